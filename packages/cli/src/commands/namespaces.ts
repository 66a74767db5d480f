import type { Command } from 'commander';
import { isNotFound } from '@berth/core';
import { labelUpdate, parseLabels } from '../args.js';
import { ReportedFailure, type CliContext } from '../context.js';
import { formatLabels } from '../format.js';

export function registerNamespaces(program: Command, ctx: CliContext): void {
  const ns = program.command('namespaces').aliases(['namespace', 'ns']).description('manage namespaces');

  ns.command('create')
    .alias('c')
    .description('create a namespace, with optional labels')
    .argument('<name>')
    .argument('[labels...]', 'k=v labels')
    .action(async (name: string, labelArgs: string[]) => {
      const labels = parseLabels(labelArgs);
      const { namespace } = await ctx.berth().namespaces.Create({ namespace: { name, labels } });
      if (ctx.json) ctx.printJson(namespace ?? { name, labels });
    });

  ns.command('ls')
    .alias('list')
    .description('list namespaces')
    .option('-q, --quiet', 'print only the names')
    .action(async (opts: { quiet?: boolean }) => {
      const { namespaces } = await ctx.berth().namespaces.List({});
      if (ctx.json) ctx.printJson(namespaces.map((n) => ({ name: n.name, labels: n.labels })));
      else if (opts.quiet) for (const n of namespaces) ctx.line(n.name);
      else ctx.table([['NAME', 'LABELS'], ...namespaces.map((n) => [n.name, formatLabels(n.labels, '')])]);
    });

  ns.command('label')
    .description('set labels of a namespace (k= removes k); prints the resulting labels')
    .argument('<name>')
    .argument('[labels...]', 'k=v labels')
    .action(async (name: string, labelArgs: string[]) => {
      const client = ctx.berth().namespaces;
      const { labels, paths } = labelUpdate(parseLabels(labelArgs));
      if (paths.length > 0) await client.Update({ namespace: { name, labels }, update_mask: { paths } });
      // containerd answers Update with an empty namespace; read it back.
      const { namespace } = await client.Get({ name });
      if (ctx.json) ctx.printJson({ name, labels: namespace?.labels ?? {} });
      else ctx.line(formatLabels(namespace?.labels, ''));
    });

  ns.command('rm')
    .aliases(['remove', 'delete', 'del'])
    .description('remove namespaces (they must be empty); a missing one is only a warning')
    .argument('<names...>')
    .action(async (names: string[]) => {
      const removed: string[] = [];
      let failed = 0;
      for (const name of names) {
        try {
          await ctx.berth().namespaces.Delete({ name });
        } catch (err) {
          if (!isNotFound(err)) {
            failed++;
            ctx.error(`unable to delete ${name}: ${ctx.describeError(err)}`);
            continue;
          }
          ctx.warn(ctx.describeError(err));
        }
        removed.push(name);
        if (!ctx.json) ctx.line(name);
      }
      if (ctx.json) ctx.printJson(removed);
      if (failed > 0) throw new ReportedFailure();
    });
}
