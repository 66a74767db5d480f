// Tar for image archives: entries are read with tar-stream (every header format docker, ctr and GNU tar write), and
// written by a small ustar writer (a PAX record only for a name over 100 bytes), as Go's archive/tar writes
// containerd's exports: regular files and directories, owner 0, time 0.
import { Readable } from 'node:stream';
import { InvalidArgumentError } from '@berth/core';
import { extract, type Header as TarHeaders } from 'tar-stream';

type TarEntryStream = AsyncIterable<Buffer> & { readonly header: TarHeaders };

export interface TarEntry {
  readonly name: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  readonly size: number;
  readonly linkname: string;
  /** The entry's bytes; the reader waits until they are read (or drain() is called). */
  readonly body: Readable;
  /** Skips the rest of the body. */
  drain(): Promise<void>;
}

function entryType(h: TarHeaders): TarEntry['type'] {
  switch (h.type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    default:
      return 'other';
  }
}

/** Entries of a tar stream, one at a time (bodies are never buffered whole). */
export async function* readTar(source: AsyncIterable<Uint8Array> | Readable): AsyncGenerator<TarEntry> {
  const ex = extract();
  const input = source instanceof Readable ? source : Readable.from(source, { objectMode: false });
  let inputError: unknown;
  input.on('error', (err) => {
    inputError = err;
    ex.destroy(err);
  });
  input.pipe(ex);
  const entries = (ex as unknown as AsyncIterable<TarEntryStream>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<TarEntryStream>;
      try {
        next = await entries.next();
      } catch (err) {
        if (inputError) throw inputError;
        throw new InvalidArgumentError(`the archive is not a valid tar: ${(err as Error).message}`, { cause: err });
      }
      if (next.done) break;
      const stream = next.value;
      const h = stream.header;
      const body = stream as unknown as Readable;
      yield {
        name: h.name,
        type: entryType(h),
        size: h.size ?? 0,
        linkname: h.linkname ?? '',
        body,
        drain: async () => {
          for await (const chunk of body) void chunk;
        },
      };
      // Whatever the consumer left unread is skipped, so the next header can be parsed.
      for await (const chunk of body) void chunk;
    }
  } finally {
    input.unpipe(ex);
    input.destroy();
    ex.destroy();
  }
  if (inputError) throw inputError;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, mode: number, typeflag: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(typeflag, 156, 'ascii');
  h.write('ustar\x0000', 257, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

function pad(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** The header blocks of one entry (with a PAX `path` record first when the name does not fit ustar's 100 bytes). */
export function tarHeader(name: string, size: number, mode: number, type: 'file' | 'directory'): Buffer {
  const flag = type === 'file' ? '0' : '5';
  if (Buffer.byteLength(name) <= 100) return header(name, size, mode, flag);
  const pax = Buffer.from(paxRecord('path', name));
  return Buffer.concat([header('PaxHeaders.0/' + name.slice(0, 80), pax.length, 0o644, 'x'), pax, pad(pax.length), header(name.slice(0, 100), size, mode, flag)]);
}

/** The padding after `size` bytes of data. */
export function tarPadding(size: number): Buffer {
  return pad(size);
}

/** The two zero blocks that end an archive. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}
