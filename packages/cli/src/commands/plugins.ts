import type { Command } from 'commander';
import type { containerd } from '@berth/api';
import type { CliContext } from '../context.js';
import { formatPlatforms } from '../format.js';

type Plugin = containerd.services.introspection.v1.Plugin;

/** Export key under which berthd reports a plugin's package version. */
export const VERSION_EXPORT = 'berth.version';

/** ctr's STATUS column: ok, skip (the init error says "skip plugin") or error. */
export function pluginStatus(plugin: Plugin): 'ok' | 'skip' | 'error' {
  if (!plugin.init_err) return 'ok';
  return plugin.init_err.message.includes('skip plugin') ? 'skip' : 'error';
}

const GRPC_CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];

/** The name Go's codes.Code prints for a status code. */
export function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? `Code(${code})`;
}

export function pluginRows(plugins: readonly Plugin[]): string[][] {
  return [
    ['TYPE', 'ID', 'VERSION', 'PLATFORMS', 'STATUS'],
    ...plugins.map((p) => [p.type, p.id, p.exports[VERSION_EXPORT] || '-', formatPlatforms(p.platforms), pluginStatus(p)]),
  ];
}

/** The `-d` view: one block of `Key: value` lines per plugin, blank line between plugins. */
export function formatPluginDetails(plugins: readonly Plugin[]): string {
  const blocks = plugins.map((p) => {
    const lines = [`Type:          ${p.type}`, `ID:            ${p.id}`, `Version:       ${p.exports[VERSION_EXPORT] || '-'}`];
    if (p.requires.length > 0) lines.push('Requires:', ...p.requires.map((r) => `               ${r}`));
    if (p.platforms.length > 0) lines.push(`Platforms:     ${formatPlatforms(p.platforms)}`);
    const exports = Object.entries(p.exports).filter(([k]) => k !== VERSION_EXPORT).sort(([a], [b]) => a.localeCompare(b));
    if (exports.length > 0) {
      const keyWidth = Math.max(...exports.map(([k]) => k.length));
      lines.push('Exports:', ...exports.map(([k, v]) => `               ${k.padEnd(keyWidth)}   ${v}`));
    }
    if (p.capabilities.length > 0) lines.push(`Capabilities:  ${p.capabilities.join(',')}`);
    if (p.init_err) {
      lines.push('Error:', `               Code:     ${grpcCodeName(p.init_err.code)}`, `               Message:  ${p.init_err.message}`);
    }
    return lines.join('\n');
  });
  return blocks.length > 0 ? `${blocks.join('\n\n')}\n` : '';
}

function pluginJson(p: Plugin) {
  return {
    type: p.type,
    id: p.id,
    version: p.exports[VERSION_EXPORT] ?? null,
    status: pluginStatus(p),
    requires: p.requires,
    platforms: p.platforms.map((x) => ({ os: x.os, architecture: x.architecture, variant: x.variant })),
    exports: p.exports,
    capabilities: p.capabilities,
    init_err: p.init_err ? { code: p.init_err.code, message: p.init_err.message } : null,
  };
}

export function registerPlugins(program: Command, ctx: CliContext): void {
  const plugins = program.command('plugins').description('information about the plugins of berthd (berth plugin: installing plugin packages)');
  plugins
    .command('ls')
    .alias('list')
    .description('list the plugins, their versions and status (filters as in ctr, e.g. type==io.containerd.content.v1)')
    .argument('[filters...]', 'filters, ORed together')
    .option('-q, --quiet', 'print only the plugin ids')
    .option('-d, --detailed', 'print exports, capabilities and the init error of each plugin')
    .action(async (filters: string[], opts: { quiet?: boolean; detailed?: boolean }) => {
      const { plugins: list } = await ctx.berth().introspection.Plugins({ filters });
      if (ctx.json) ctx.printJson(list.map(pluginJson));
      else if (opts.quiet) for (const p of list) ctx.line(p.id);
      else if (opts.detailed) ctx.write(formatPluginDetails(list));
      else ctx.table(pluginRows(list));
    });
}
