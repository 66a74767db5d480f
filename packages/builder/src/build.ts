// Builds a distribution: manifest -> checked selection -> a directory with bin/<name> (a bundled launcher made the
// same way as berthd's, tools/bundle.mjs) and its default config.toml. Everything is checked before anything is
// written, and the directory is assembled beside its destination and renamed into place, so a failed build
// leaves nothing behind.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify as stringifyToml } from 'smol-toml';
import { AlreadyExistsError, assertComposition, PLUGIN_API_VERSION, PluginHost, pluginUri, ttrpcAddressOf } from '@berth/core';
import { readDistributionManifest, type DistributionManifest } from './manifest.js';
import { resolvePlugins, selection, type ResolvedPlugin } from './resolve.js';
import { PACKAGE_VERSION } from './version.js';

export interface BuildOptions {
  /** Where the distribution goes (default: `dist/<name>` beside the manifest). */
  readonly outDir?: string;
  /** Replace an existing output directory (refused otherwise). */
  readonly force?: boolean;
}

export interface DistributionPlugin {
  readonly uri: string;
  readonly version: string;
  readonly pluginApi: string;
  /** The manifest's name for where it came from (package name or path). */
  readonly from: string;
  readonly package?: string;
  readonly packageVersion?: string;
}

export interface BuildResult {
  readonly name: string;
  readonly version: string;
  readonly outDir: string;
  /** bin/<name>: the distribution's daemon. */
  readonly bin: string;
  readonly configFile: string;
  readonly plugins: readonly DistributionPlugin[];
}

/** Packages the bundle leaves outside (tools/bundle.mjs's BASE_EXTERNAL), linked into the distribution. */
const NATIVE = ['lmdb', 'koffi', 're2js'];

interface BundleModule {
  bundle(options: {
    input: string;
    bundleFile: string;
    launcherFile: string;
    name: string;
    nodeFlags?: string;
    modules?: readonly string[];
  }): Promise<void>;
}

/** Checks a manifest without writing anything: returns the selection it would build. */
export async function checkDistribution(manifestFile: string): Promise<{ manifest: DistributionManifest; plugins: ResolvedPlugin[]; report: DistributionPlugin[] }> {
  const file = resolve(manifestFile);
  const manifest = await readDistributionManifest(file);
  const plugins = await resolvePlugins(manifest.plugins, dirname(file), file);
  const selected = selection(plugins);
  const manifests = selected.map((s) => s.manifest);
  // The requires graph, the API ranges and cycles, without running any plugin.
  assertComposition(manifests, { subject: `distribution ${manifest.name} ${manifest.version} (${file})`, disabled: manifest.config.disabled_plugins });
  // The default config's plugin sections against the plugins' schemas (creating a host runs no init).
  const { config } = manifest;
  PluginHost.create({
    plugins: manifests,
    server: { root: config.root, state: config.state, grpcAddress: config.grpc.address, ttrpcAddress: ttrpcAddressOf(config), version: manifest.version, revision: '' },
    pluginConfig: config.plugins,
    disabled: config.disabled_plugins,
    required: config.required_plugins,
    configSource: `${file} [config]`,
  });
  const report = selected.map(({ manifest: m, from }) => ({
    uri: pluginUri(m),
    version: m.version,
    pluginApi: m.pluginApi,
    from: from.label,
    ...(from.packageName ? { package: from.packageName } : {}),
    ...(from.packageVersion ? { packageVersion: from.packageVersion } : {}),
  }));
  return { manifest, plugins, report };
}

export async function buildDistribution(manifestFile: string, options: BuildOptions = {}): Promise<BuildResult> {
  const file = resolve(manifestFile);
  const { manifest, plugins, report } = await checkDistribution(file);
  const outDir = resolve(options.outDir ?? join(dirname(file), 'dist', manifest.name));
  if (existsSync(outDir) && !options.force) throw new AlreadyExistsError(`${outDir} exists (remove it, or build with --force to replace it)`);

  await mkdir(dirname(outDir), { recursive: true });
  const stage = await mkdtemp(join(dirname(outDir), `.${basename(outDir)}.build-`));
  const entryDir = await mkdtemp(join(tmpdir(), 'berth-build-'));
  try {
    const entry = join(entryDir, 'entry.mjs');
    await writeFile(entry, entrySource(manifest, plugins));
    const { bundle } = (await import(bundlerUrl())) as BundleModule;
    await bundle({
      input: entry,
      bundleFile: join(stage, 'lib', `${manifest.name}.cjs`),
      launcherFile: join(stage, 'bin', manifest.name),
      name: manifest.name,
      nodeFlags: '--max-semi-space-size=1',
      modules: [join(packageRoot(), 'node_modules')],
    });
    await writeFile(join(stage, 'config.toml'), configSource(manifest, file));
    await writeFile(join(stage, 'package.json'), `${JSON.stringify({ name: manifest.name, version: manifest.version, private: true, type: 'commonjs' }, null, 2)}\n`);
    await writeFile(
      join(stage, 'distribution.json'),
      `${JSON.stringify({ name: manifest.name, version: manifest.version, description: manifest.description, pluginApi: PLUGIN_API_VERSION, builder: PACKAGE_VERSION, plugins: report }, null, 2)}\n`,
    );
    await linkRuntimePackages(stage, plugins);
    // mkdtemp made it owner-only; a distribution is a program directory like any other.
    await chmod(stage, 0o755);
    if (existsSync(outDir)) await rm(outDir, { recursive: true, force: true });
    await rename(stage, outDir);
  } catch (err) {
    await rm(stage, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(entryDir, { recursive: true, force: true });
  }
  return {
    name: manifest.name,
    version: manifest.version,
    outDir,
    bin: join(outDir, 'bin', manifest.name),
    configFile: join(outDir, 'config.toml'),
    plugins: report,
  };
}

/** The distribution's main: its plugins, imported by file, composed by @berth/daemon's createDaemon. */
function entrySource(manifest: DistributionManifest, plugins: readonly ResolvedPlugin[]): string {
  const require = createRequire(import.meta.url);
  const compose = require.resolve('@berth/daemon/compose');
  const heap = join(dirname(compose), 'heap.js');
  const lines = [
    `// Generated by @berth/builder ${PACKAGE_VERSION} for ${manifest.name} ${manifest.version}.`,
    "import { realpathSync } from 'node:fs';",
    "import { dirname, join } from 'node:path';",
    `import { createDaemon } from ${JSON.stringify(compose)};`,
    `import { applyHeapFlags } from ${JSON.stringify(heap)};`,
    ...plugins.map((p, i) => `import * as plugin${i} from ${JSON.stringify(p.file)};`),
    '',
    'applyHeapFlags();',
    '// bin/<name> -> the distribution directory, holding its config.toml.',
    "const home = join(dirname(realpathSync(process.argv[1])), '..');",
    `const plugins = [${plugins.map((p, i) => `plugin${i}[${JSON.stringify(p.exportName)}]`).join(', ')}].flat();`,
    'let program;',
    'try {',
    '  program = createDaemon({',
    `    name: ${JSON.stringify(manifest.name)},`,
    `    version: ${JSON.stringify(`v${manifest.version}`)},`,
    ...(manifest.description ? [`    description: ${JSON.stringify(manifest.description)},`] : []),
    '    plugins,',
    "    defaultConfigFile: join(home, 'config.toml'),",
    '  });',
    '} catch (err) {',
    `  process.stderr.write(${JSON.stringify(`${manifest.name}: `)} + (err instanceof Error ? err.message : String(err)) + '\\n');`,
    '  process.exit(1);',
    '}',
    'void program.main();',
    '',
  ];
  return lines.join('\n');
}

function configSource(manifest: DistributionManifest, source: string): string {
  const body = Object.keys(manifest.rawConfig).length > 0 ? stringifyToml(manifest.rawConfig) : '';
  return `# The default config of ${manifest.name} ${manifest.version}, from [config] of ${basename(source)}.\n# \`${manifest.name} config default\` prints every key with its default.\n${body}${body.endsWith('\n') || body === '' ? '' : '\n'}`;
}

/**
 * node_modules of the distribution: the native packages the bundle leaves outside, and every plugin package (a
 * plugin may resolve its own files by package name at run time, as the walking differ does for its worker). They
 * are links into this machine's install: the directory runs here, and an image of it would copy them instead.
 */
async function linkRuntimePackages(stage: string, plugins: readonly ResolvedPlugin[]): Promise<void> {
  const daemonRequire = createRequire(createRequire(import.meta.url).resolve('@berth/daemon'));
  const links = new Map<string, string>();
  for (const name of NATIVE) {
    const found = packageDirOf(daemonRequire, name);
    if (found) links.set(name, found);
  }
  for (const p of plugins) {
    if (!p.packageName) continue;
    for (let d = dirname(p.file); d !== dirname(d); d = dirname(d)) {
      if (existsSync(join(d, 'package.json')) && (await readName(join(d, 'package.json'))) === p.packageName) {
        links.set(p.packageName, d);
        break;
      }
    }
  }
  for (const [name, target] of links) {
    const link = join(stage, 'node_modules', name);
    await mkdir(dirname(link), { recursive: true });
    await symlink(target, link, 'dir');
  }
}

function packageDirOf(require: NodeJS.Require, name: string): string | undefined {
  try {
    const entry = require.resolve(name);
    const marker = `${join('node_modules', name)}/`;
    const at = entry.lastIndexOf(marker);
    return at >= 0 ? entry.slice(0, at + marker.length - 1) : undefined;
  } catch {
    return undefined;
  }
}

async function readName(pkgFile: string): Promise<string | undefined> {
  return (JSON.parse(await readFile(pkgFile, 'utf8')) as { name?: string }).name;
}

function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}

/** tools/bundle.mjs of this workspace: berthd's and berth's bundler, so a distribution is built exactly like them. */
function bundlerUrl(): string {
  return pathToFileURL(resolve(packageRoot(), '../../tools/bundle.mjs')).href;
}
