#!/usr/bin/env node
// berth-build: a distribution from a manifest (docs/custom-runtimes.md). Also reached as `berth build`.
import { buildDistribution, checkDistribution } from './build.js';

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const args = [...argv];
  const flag = (names: string[]) => {
    const at = args.findIndex((a) => names.includes(a));
    if (at < 0) return undefined;
    const value = args[at + 1];
    if (value === undefined || value.startsWith('-')) throw new Error(`${args[at]} needs a value`);
    args.splice(at, 2);
    return value;
  };
  const has = (name: string) => {
    const at = args.indexOf(name);
    if (at >= 0) args.splice(at, 1);
    return at >= 0;
  };
  try {
    if (has('-h') || has('--help')) {
      process.stdout.write(USAGE);
      return 0;
    }
    const outDir = flag(['-o', '--output']);
    const force = has('--force');
    const checkOnly = has('--check');
    const unknown = args.find((a) => a.startsWith('-'));
    if (unknown) throw new Error(`unknown option ${unknown}\n${USAGE}`);
    if (args.length !== 1) throw new Error(`expected one manifest file\n${USAGE}`);
    const manifestFile = args[0]!;
    if (checkOnly) {
      const { manifest, report } = await checkDistribution(manifestFile);
      process.stdout.write(`${manifest.name} ${manifest.version}: ${report.length} plugins, the selection is complete\n`);
      return 0;
    }
    const built = await buildDistribution(manifestFile, { ...(outDir ? { outDir } : {}), force });
    process.stdout.write(`built ${built.name} ${built.version} (${built.plugins.length} plugins) in ${built.outDir}\n  run: ${built.bin}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`berth build: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const USAGE = `usage: berth build MANIFEST [-o DIR] [--force] [--check]
  MANIFEST     the distribution's manifest (TOML: [distribution], [[plugins]], [config])
  -o DIR       where to write the distribution (default: dist/<name> beside the manifest)
  --force      replace DIR when it exists
  --check      check the selection only; write nothing
`;
