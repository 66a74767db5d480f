// `berth build`: runs @berth/builder's bin (docs/custom-runtimes.md). The builder imports plugins and bundles with
// rolldown, so it runs as its own process from its own package rather than inside this CLI's bundle.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';

export function registerBuild(program: Command, ctx: CliContext): void {
  program
    .command('build <manifest>')
    .description('build a custom daemon (a distribution) from a manifest of plugins, checked before anything is written')
    .option('-o, --output <dir>', 'where the distribution goes (default: dist/<name> beside the manifest)')
    .option('--force', 'replace the output directory when it exists')
    .option('--check', 'check the manifest and its plugin selection only; write nothing')
    .action(async (manifest: string, opts: { output?: string; force?: boolean; check?: boolean }) => {
      const bin = createRequire(import.meta.url).resolve('@berth/builder/bin');
      const args = [bin, manifest, ...(opts.output ? ['-o', opts.output] : []), ...(opts.force ? ['--force'] : []), ...(opts.check ? ['--check'] : [])];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => ctx.io.stdout.write(d));
      child.stderr.on('data', (d: Buffer) => ctx.io.stderr.write(d));
      const code = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (c) => resolve(c ?? 1));
      });
      if (code !== 0) ctx.exitCode = code;
    });
}
