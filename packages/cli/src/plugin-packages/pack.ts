// `berth plugin pack`: a plugin package (built ESM) as one self-contained tarball, the layer of a plugin artifact.
import { lstat, mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import {
  factsOfManifest,
  InvalidArgumentError,
  loadPluginPackages,
  MODULE_IMPORTER,
  packageNameProblem,
  packageVersionProblem,
  sha256Digest,
  treeDigest,
  treePathProblem,
  type Platform,
  type PluginFacts,
  type PluginPackageFacts,
} from '@berth/core';
import { treeFilesOf, writeTarGz, type TarFile } from './tar.js';

/** What the packed package.json carries under `berth` (the facts push publishes, minus the tree digest). */
export interface PackedFacts {
  readonly entry: string;
  readonly plugins: readonly PluginFacts[];
  readonly platforms: readonly Platform[];
  readonly capabilities: readonly string[];
}

export interface PackedPlugin {
  readonly tarball: Buffer;
  /** sha256 of the tarball (the layer digest). */
  readonly digest: string;
  readonly facts: PluginPackageFacts;
}

interface SourcePackage {
  name?: unknown;
  version?: unknown;
  type?: unknown;
  main?: unknown;
  exports?: unknown;
  files?: unknown;
  berth?: { capabilities?: unknown; platforms?: unknown };
}

const CODE = /\.(?:[cm]?js|[cm]?ts|map)$/;
const SKIP = new Set(['node_modules', 'package.json', 'package-lock.json', 'pnpm-lock.yaml', 'yarn.lock']);

/** Bundles `dir` (its entry and every npm dependency, `@berth/core` included) and packs it with its other files. */
export async function packPlugin(dir: string): Promise<PackedPlugin> {
  const root = resolve(dir);
  let pkg: SourcePackage;
  try {
    pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as SourcePackage;
  } catch (err) {
    throw new InvalidArgumentError(`${root}: no readable package.json: ${(err as Error).message}`);
  }
  const problem = packageNameProblem(pkg.name) ?? packageVersionProblem(pkg.version);
  if (problem) throw new InvalidArgumentError(`${root}/package.json: ${problem}`);
  const name = pkg.name as string;
  const version = pkg.version as string;
  if (pkg.type !== 'module') throw new InvalidArgumentError(`${root}/package.json: a plugin package is ESM: set "type": "module"`);
  const entry = entryOf(pkg, root);

  const code = await bundle(root, entry);
  const files: TarFile[] = [{ path: entry, executable: false, data: Buffer.from(code) }, ...(await assets(root, pkg, entry))];

  // Load what was bundled (not the sources) to read the manifests: the facts are those of the code that ships.
  const manifests = await withTree(files, async (tmp) => (await loadPluginPackages([join(tmp, entry)], tmp)).manifests);
  const plugins = manifests.map(factsOfManifest);
  const declared = pkg.berth ?? {};
  const platforms = Array.isArray(declared.platforms) ? (declared.platforms as Platform[]) : uniquePlatforms(plugins.flatMap((p) => p.platforms));
  const capabilities = Array.isArray(declared.capabilities) ? declared.capabilities.map(String) : [];
  const packed: PackedFacts = { entry, plugins, platforms, capabilities };
  const manifest = { name, version, type: 'module', exports: `./${entry}`, berth: packed };
  files.push({ path: 'package.json', executable: false, data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) });

  const tarball = writeTarGz(files);
  const tree = treeFilesOf(files);
  const facts: PluginPackageFacts = {
    schemaVersion: 1,
    name,
    version,
    ...packed,
    tree: { digest: treeDigest(tree), files: tree.length, size: tree.reduce((n, f) => n + f.size, 0) },
  };
  return { tarball, digest: sha256Digest(tarball), facts };
}

/** The package's main module, as a path inside it (exports "." → import/default, else main, else index.js). */
function entryOf(pkg: SourcePackage, root: string): string {
  let target: unknown = pkg.exports;
  if (target && typeof target === 'object' && '.' in target) target = (target as Record<string, unknown>)['.'];
  while (target && typeof target === 'object') {
    const t = target as Record<string, unknown>;
    target = t.import ?? t.node ?? t.default;
  }
  const rel = relative(root, resolve(root, typeof target === 'string' ? target : typeof pkg.main === 'string' ? pkg.main : 'index.js')).split(sep).join('/');
  const problem = treePathProblem(rel);
  if (problem) throw new InvalidArgumentError(`${root}/package.json: the entry ${rel} ${problem}`);
  return rel;
}

function uniquePlatforms(list: readonly Platform[]): Platform[] {
  const seen = new Map<string, Platform>();
  for (const p of list) seen.set(`${p.os}/${p.architecture}/${p.variant ?? ''}`, p);
  return [...seen.values()];
}

type Rolldown = typeof import('rolldown');

/** rolldown, loaded only for `pack` (through the launcher's importer when the CLI runs as its bundle). */
async function loadRolldown(): Promise<Rolldown> {
  const importer = (globalThis as { [MODULE_IMPORTER]?: (href: string) => Promise<unknown> })[MODULE_IMPORTER];
  const specifier = 'rolldown';
  return (await (importer ? importer(specifier) : import(specifier))) as Rolldown;
}

async function bundle(root: string, entry: string): Promise<string> {
  const { rolldown } = await loadRolldown();
  const builtins = new Set(builtinModules);
  const modules = new Set<string>();
  const build = await rolldown({
    input: join(root, entry),
    cwd: root,
    platform: 'node',
    logLevel: 'silent',
    external: (id) => id.startsWith('node:') || builtins.has(id) || builtins.has(id.split('/')[0]!),
    plugins: [
      {
        name: 'berth-plugin-pack',
        load(id) {
          modules.add(id);
          if (id.endsWith('.node')) throw new InvalidArgumentError(`native addon ${id}: berth plugin pack does not bundle native addons (see docs/plugins.md)`);
          return null;
        },
      },
    ],
  });
  try {
    const { output } = await build.generate({ format: 'esm', codeSplitting: false });
    await refuseNativePackages(modules);
    const chunk = output.find((o) => o.type === 'chunk');
    if (!chunk) throw new InvalidArgumentError(`bundling ${entry} produced no code`);
    return chunk.code;
  } finally {
    await build.close();
  }
}

/**
 * A dependency that loads a compiled addon at run time (node-gyp-build, bindings, prebuilds) would not find it in
 * the bundle: refused, naming the package and the file, rather than packed into something that fails at start.
 */
async function refuseNativePackages(modules: ReadonlySet<string>): Promise<void> {
  const packages = new Set<string>();
  for (const id of modules) {
    const m = /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(id);
    if (m) packages.add(m[1]!);
  }
  for (const dir of packages) {
    const found = await findNative(dir, 4);
    if (found) {
      throw new InvalidArgumentError(`dependency ${relative(join(dir, '..'), dir)} ships a native addon (${relative(dir, found)}); berth plugin pack bundles pure JavaScript dependencies only`);
    }
  }
}

async function findNative(dir: string, depth: number): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (name === 'binding.gyp' || name.endsWith('.node')) return path;
    if (depth > 0 && name !== 'node_modules' && !name.startsWith('.') && (await lstat(path)).isDirectory()) {
      const found = await findNative(path, depth - 1);
      if (found) return found;
    }
  }
  return undefined;
}

/** The package's other files (protos, schemas, README): its `files` list, or everything but code and node_modules. */
async function assets(root: string, pkg: SourcePackage, entry: string): Promise<TarFile[]> {
  const roots = Array.isArray(pkg.files) ? pkg.files.map(String) : ['.'];
  const out = new Map<string, TarFile>();
  const visit = async (rel: string): Promise<void> => {
    const abs = join(root, rel);
    let st;
    try {
      st = await lstat(abs);
    } catch {
      return;
    }
    const base = rel.split('/').pop()!;
    if (rel !== '.' && (base.startsWith('.') || SKIP.has(base))) return;
    if (st.isDirectory()) {
      for (const name of (await readdir(abs)).sort()) await visit(rel === '.' ? name : `${rel}/${name}`);
    } else if (st.isFile()) {
      if (CODE.test(base) || base.endsWith('.tgz') || rel === entry) return;
      out.set(rel, { path: rel, executable: (st.mode & 0o111) !== 0, data: await readFile(abs) });
    } else if (st.isSymbolicLink()) {
      throw new InvalidArgumentError(`${abs} is a symbolic link; a plugin package holds regular files only`);
    }
  };
  for (const r of roots) {
    const rel = relative(root, resolve(root, r)).split(sep).join('/') || '.';
    if (rel.startsWith('..')) throw new InvalidArgumentError(`${root}/package.json: files entry ${r} is outside the package`);
    await visit(rel);
  }
  return [...out.values()];
}

/** Runs `fn` on the files written to a temp dir, removed afterwards. */
export async function withTree<T>(files: readonly TarFile[], fn: (dir: string) => Promise<T>): Promise<T> {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-plugin-pack-'));
  try {
    await writeFile(join(tmp, 'package.json'), '{"type":"module"}\n');
    for (const f of files) {
      await mkdir(dirname(join(tmp, f.path)), { recursive: true });
      await writeFile(join(tmp, f.path), f.data, { mode: f.executable ? 0o755 : 0o644 });
    }
    return await fn(tmp);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
