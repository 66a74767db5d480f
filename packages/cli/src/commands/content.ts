import type { Command } from 'commander';
import type { containerd } from '@berth/api';
import { Lockstep, type BerthClient } from '@berth/client';
import { InvalidArgumentError, isAlreadyExists, isNotFound, DataLossError } from '@berth/core';
import { labelUpdate, parseDigest, parseLabels, parseSize } from '../args.js';
import { ReportedFailure, type CliContext } from '../context.js';
import { formatLabels, formatTimestamp, humanDuration, humanSize, timestampToDate } from '../format.js';

type Info = containerd.services.content.v1.Info;
type Status = containerd.services.content.v1.Status;
type WriteRequest = containerd.services.content.v1.WriteContentRequestInput;
type WriteResponse = containerd.services.content.v1.WriteContentResponse;

/** Bytes per WRITE message (ctr copies with a 1 MiB buffer). */
export const WRITE_CHUNK_BYTES = 1 << 20;

function infoJson(info: Info) {
  return {
    digest: info.digest,
    size: info.size,
    created_at: formatTimestamp(info.created_at),
    updated_at: formatTimestamp(info.updated_at),
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

/** Re-cuts a byte stream into chunks of `size` bytes (the last may be shorter), after dropping `skip` bytes. */
export async function* rechunk(source: AsyncIterable<Uint8Array | string>, size: number, skip = 0): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  let toSkip = skip;
  for await (const piece of source) {
    let chunk = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    if (toSkip > 0) {
      const dropped = Math.min(toSkip, chunk.length);
      chunk = chunk.subarray(dropped);
      toSkip -= dropped;
    }
    if (chunk.length === 0) continue;
    parts.push(chunk);
    length += chunk.length;
    while (length >= size) {
      const all = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
      yield all.subarray(0, size);
      parts = length > size ? [all.subarray(size)] : [];
      length -= size;
    }
  }
  if (toSkip > 0) throw new InvalidArgumentError(`input ended ${toSkip} bytes before the offset of the existing ingest`);
  if (length > 0) yield Buffer.concat(parts, length);
}

export interface IngestOptions {
  readonly expectedSize?: number;
  readonly expectedDigest?: string;
  readonly onProgress?: (offset: number, total: number) => void;
}

export interface IngestResult {
  readonly digest: string;
  readonly size: number;
  /** True when the store already had the blob (ctr treats that as success). */
  readonly existed: boolean;
}

/**
 * Writes a blob under `ref` the way ctr's content.WriteBlob does over Content.Write: STAT with ref/total/expected,
 * STAT for the resume offset (skipping that many input bytes), WRITE chunks, then COMMIT.
 */
export async function ingest(client: BerthClient, ref: string, source: AsyncIterable<Uint8Array | string>, options: IngestOptions = {}): Promise<IngestResult> {
  const total = options.expectedSize ?? 0;
  const expected = options.expectedDigest ?? '';
  const existing = (): IngestResult => ({ digest: expected, size: total, existed: true });
  const stream = new Lockstep<WriteRequest, WriteResponse>((requests) => client.content.Write(requests));
  try {
    try {
      await stream.send({ action: 'STAT', ref, total, expected });
    } catch (err) {
      if (isAlreadyExists(err)) return existing();
      throw err;
    }
    const status = await stream.send({ action: 'STAT' });
    let offset = status.offset;
    let digest = status.digest;
    options.onProgress?.(offset, status.total || total);
    for await (const data of rechunk(source, WRITE_CHUNK_BYTES, offset)) {
      const res = await stream.send({ action: 'WRITE', offset, data });
      if (res.offset !== offset + data.length) {
        throw new DataLossError(`short write to ${ref}: ${res.offset - offset} of ${data.length} bytes taken`);
      }
      offset = res.offset;
      digest = res.digest || digest;
      options.onProgress?.(offset, res.total || total);
    }
    let committed: WriteResponse;
    try {
      committed = await stream.send({ action: 'COMMIT', offset, total, expected });
    } catch (err) {
      if (isAlreadyExists(err)) return { digest: expected || digest, size: offset, existed: true };
      throw err;
    }
    if (total !== 0 && committed.offset !== total) throw new DataLossError(`unexpected size: ${committed.offset} != ${total}`);
    if (expected !== '' && committed.digest !== expected) throw new DataLossError(`unexpected digest: ${committed.digest} != ${expected}`);
    await stream.close();
    return { digest: committed.digest || digest, size: committed.offset, existed: false };
  } finally {
    await stream.cancel().catch(() => {});
  }
}

/** A `\r`-rewritten progress line on a TTY, at most every 100 ms. */
function progressLine(ctx: CliContext, ref: string): { update(offset: number, total: number): void; done(): void } {
  let last = 0;
  let text = '';
  const draw = () => ctx.io.stderr.write(`\r\x1b[K${text}`);
  return {
    update(offset, total) {
      text = `${ref}: ${humanSize(offset)}${total > 0 ? ` / ${humanSize(total)}` : ''}`;
      const now = Date.now();
      if (now - last >= 100) {
        last = now;
        draw();
      }
    },
    done() {
      if (text) {
        draw();
        ctx.io.stderr.write('\n');
      }
    },
  };
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
      const { info } = await ctx.berth().content.Info({ digest: parseDigest(digest) });
      if (!info) throw new DataLossError(`no info returned for ${digest}`);
      if (ctx.json) return ctx.printJson(infoJson(info));
      ctx.table(
        [
          ['Digest:', info.digest],
          ['Size:', `${info.size} (${humanSize(info.size)})`],
          ['Created:', formatTimestamp(info.created_at) || '-'],
          ['Updated:', formatTimestamp(info.updated_at) || '-'],
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
      const client = ctx.berth();
      const { info } = await client.content.Info({ digest: parseDigest(digest) });
      const out = ctx.io.stdout;
      for await (const chunk of client.content.Read({ digest, size: info?.size ?? 0 })) {
        if (!out.write(chunk.data)) await new Promise((resolve) => out.once('drain', resolve));
      }
    });

  content
    .command('ingest')
    .description('write stdin into the store under a transaction reference, then commit it')
    .argument('<ref>', 'ingest reference (resumable)')
    .option('--expected-size <bytes>', 'fail unless the blob has this size', parseSize)
    .option('--expected-digest <digest>', 'fail unless the blob has this digest', parseDigest)
    .action(async (ref: string, opts: { expectedSize?: number; expectedDigest?: string }) => {
      if (ref === '') throw new InvalidArgumentError('must specify a transaction reference');
      const progress = ctx.io.stderr.isTTY ? progressLine(ctx, ref) : undefined;
      const result = await ingest(ctx.berth(), ref, ctx.io.stdin, { ...opts, onProgress: progress?.update });
      progress?.done();
      if (ctx.json) ctx.printJson({ ref, ...result });
    });

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
