import type { Command } from 'commander';
import type { containerd } from '@berth/api';
import { contentStoreToken, InvalidArgumentError, isNotFound, writeBlob, type ContentInfo, type OpContext } from '@berth/core';
import { labelUpdate, parseDigest, parseLabels, parseSize } from '../args.js';
import { ReportedFailure, type CliContext } from '../context.js';
import { formatDate, formatLabels, formatTimestamp, humanDuration, humanSize, timestampToDate } from '../format.js';
import { progressLine } from '../ingest.js';
import { registerFetchBlob } from './fetch-blob.js';


type Info = containerd.services.content.v1.Info;
type Status = containerd.services.content.v1.Status;

function infoJson(info: Info) {
  return {
    digest: info.digest,
    size: info.size,
    created_at: formatTimestamp(info.created_at),
    updated_at: formatTimestamp(info.updated_at),
    labels: info.labels,
  };
}

function contentInfoJson(info: ContentInfo) {
  return {
    digest: info.digest,
    size: info.size,
    created_at: formatDate(info.createdAt),
    updated_at: formatDate(info.updatedAt),
    labels: info.labels,
  };
}

function statusJson(status: Status) {
  return {
    ref: status.ref,
    offset: status.offset,
    total: status.total,
    expected: status.expected,
    started_at: formatTimestamp(status.started_at),
    updated_at: formatTimestamp(status.updated_at),
  };
}

function age(ts: Info['created_at'], now: number): string {
  const date = timestampToDate(ts);
  return date ? humanDuration(now - date.getTime()) : '-';
}

/** Streams a blob of the content store to stdout, respecting backpressure. */
export async function writeBlobToStdout(ctx: CliContext, op: OpContext, digest: string): Promise<void> {
  const store = await ctx.resolve(contentStoreToken);
  const reader = await store.reader(op, digest);
  const out = ctx.io.stdout;
  try {
    for await (const chunk of reader.stream()) {
      if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
    }
  } finally {
    await reader.close();
  }
}

export function registerContent(program: Command, ctx: CliContext): void {
  const content = program.command('content').description('manage the content store');

  content
    .command('ls')
    .alias('list')
    .description('list blobs (filters as in ctr, e.g. labels."k"==v)')
    .argument('[filters...]', 'filters, ORed together')
    .option('-q, --quiet', 'print only the digests')
    .action(async (filters: string[], opts: { quiet?: boolean }) => {
      const infos: Info[] = [];
      for await (const batch of ctx.berth().content.List({ filters })) infos.push(...batch.info);
      if (ctx.json) return ctx.printJson(infos.map(infoJson));
      if (opts.quiet) return infos.forEach((i) => ctx.line(i.digest));
      const now = Date.now();
      ctx.table([['DIGEST', 'SIZE', 'AGE', 'LABELS'], ...infos.map((i) => [i.digest, humanSize(i.size), age(i.created_at, now), formatLabels(i.labels)])]);
    });

  content
    .command('info')
    .description('show the size, dates and labels of a blob')
    .argument('<digest>')
    .action(async (digest: string) => {
      const store = await ctx.resolve(contentStoreToken);
      const info = await store.info(ctx.op, parseDigest(digest));
      if (ctx.json) return ctx.printJson(contentInfoJson(info));
      ctx.table(
        [
          ['Digest:', info.digest],
          ['Size:', `${info.size} (${humanSize(info.size)})`],
          ['Created:', formatDate(info.createdAt) || '-'],
          ['Updated:', formatDate(info.updatedAt) || '-'],
          ['Labels:', formatLabels(info.labels)],
        ],
        { padding: 1 },
      );
    });

  content
    .command('get')
    .description('write a blob to stdout')
    .argument('<digest>')
    .action(async (digest: string) => {
      await writeBlobToStdout(ctx, ctx.op, parseDigest(digest));
    });

  content
    .command('ingest')
    .description('write stdin into the store under a transaction reference, then commit it')
    .argument('<ref>', 'ingest reference (resumable)')
    .option('--expected-size <bytes>', 'fail unless the blob has this size', parseSize)
    .option('--expected-digest <digest>', 'fail unless the blob has this digest', parseDigest)
    .action(async (ref: string, opts: { expectedSize?: number; expectedDigest?: string }) => {
      if (ref === '') throw new InvalidArgumentError('must specify a transaction reference');
      const progress = ctx.io.stderr.isTTY
        ? progressLine(ctx, (offset: number, total: number) => `${ref}: ${humanSize(offset)}${total > 0 ? ` / ${humanSize(total)}` : ''}`)
        : undefined;
      const store = await ctx.resolve(contentStoreToken);
      const result = await writeBlob(store, ctx.op, ctx.io.stdin, {
        ref,
        total: opts.expectedSize,
        expected: opts.expectedDigest,
        onProgress: progress?.update,
      });
      progress?.done();
      if (ctx.json) ctx.printJson({ ref, ...result });
    });

  registerFetchBlob(content, ctx);

  content
    .command('active')
    .description('list ingests in progress')
    .argument('[filters...]', 'filters, e.g. ref~=^layer')
    .action(async (filters: string[]) => {
      const { statuses } = await ctx.berth().content.ListStatuses({ filters });
      if (ctx.json) return ctx.printJson(statuses.map(statusJson));
      const now = Date.now();
      ctx.table([
        ['REF', 'SIZE', 'TOTAL', 'AGE'],
        ...statuses.map((s) => [s.ref, humanSize(s.offset), s.total > 0 ? humanSize(s.total) : '-', age(s.started_at, now)]),
      ]);
    });

  content
    .command('rm')
    .aliases(['remove', 'delete', 'del'])
    .description('delete blobs; prints each digest deleted (missing ones are skipped)')
    .argument('<digests...>')
    .action(async (digests: string[]) => {
      const removed: string[] = [];
      let failed = 0;
      for (const digest of digests) {
        try {
          await ctx.berth().content.Delete({ digest: parseDigest(digest) });
        } catch (err) {
          if (isNotFound(err)) continue;
          failed++;
          ctx.error(`could not delete ${digest}: ${ctx.describeError(err)}`);
          continue;
        }
        removed.push(digest);
        if (!ctx.json) ctx.line(digest);
      }
      if (ctx.json) ctx.printJson(removed);
      if (failed > 0) throw new ReportedFailure();
    });

  content
    .command('label')
    .description('set labels of a blob (k= removes k); prints the resulting labels')
    .argument('<digest>')
    .argument('[labels...]', 'k=v labels')
    .action(async (digest: string, labelArgs: string[]) => {
      const client = ctx.berth().content;
      const { labels, paths } = labelUpdate(parseLabels(labelArgs));
      parseDigest(digest);
      const { info } = paths.length > 0 ? await client.Update({ info: { digest, labels }, update_mask: { paths } }) : await client.Info({ digest });
      if (ctx.json) ctx.printJson({ digest, labels: info?.labels ?? {} });
      else ctx.line(formatLabels(info?.labels, ''));
    });
}
