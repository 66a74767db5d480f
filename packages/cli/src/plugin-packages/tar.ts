// The plugin layer's tar format (docs/plugins.md, "The artifact"): ustar, regular files only, sorted by path, every
// header field fixed (mtime 0, uid/gid 0, no user or group names, mode 0644 or 0755), gzip with no name or time, so
// the same tree always gives the same bytes. The reader takes only what the writer makes (and directory entries);
// anything else (links, devices, PAX or GNU extensions, unsafe paths) is refused, never extracted.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { InvalidArgumentError, treePathProblem, type TreeFile } from '@berth/core';

export interface TarFile {
  readonly path: string;
  readonly executable: boolean;
  readonly data: Buffer;
}

const BLOCK = 512;
/** What a plugin layer may hold once unpacked: generous for a bundled package, small enough to keep in memory. */
export const MAX_UNPACKED_BYTES = 256 * 1024 * 1024;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new InvalidArgumentError(`path ${JSON.stringify(path)} is too long for a plugin layer (ustar: 100 + 155 bytes)`);
}

function header(file: TarFile): Buffer {
  const h = Buffer.alloc(BLOCK);
  const { name, prefix } = splitPath(file.path);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(file.executable ? 0o755 : 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(file.data.length, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** The gzip-compressed tarball of `files`, in path order. */
export function writeTarGz(files: readonly TarFile[]): Buffer {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  let previous: string | undefined;
  for (const file of sorted) {
    const problem = treePathProblem(file.path);
    if (problem) throw new InvalidArgumentError(`path ${JSON.stringify(file.path)}: ${problem}`);
    if (file.path === previous) throw new InvalidArgumentError(`path ${JSON.stringify(file.path)} appears twice`);
    previous = file.path;
    parts.push(header(file), file.data);
    const pad = (BLOCK - (file.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(parts), { level: 9 });
}

function field(h: Buffer, start: number, length: number): string {
  const raw = h.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString('utf8');
}

function parseOctal(h: Buffer, start: number, length: number, what: string): number {
  const text = field(h, start, length).trim();
  if (!/^[0-7]+$/.test(text)) throw new InvalidArgumentError(`plugin layer: bad ${what} field`);
  return parseInt(text, 8);
}

/** The files of a plugin layer (gzip or plain tar), checked; anything the writer would not make is refused. */
export function readTarGz(data: Buffer): TarFile[] {
  let tar: Buffer;
  try {
    tar = data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data, { maxOutputLength: MAX_UNPACKED_BYTES }) : data;
  } catch (err) {
    throw new InvalidArgumentError(`plugin layer is not a readable gzip stream: ${(err as Error).message}`);
  }
  const files: TarFile[] = [];
  const seen = new Set<string>();
  for (let offset = 0; offset + BLOCK <= tar.length; ) {
    const h = tar.subarray(offset, offset + BLOCK);
    if (h.every((b) => b === 0)) return files;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (parseOctal(h, 148, 8, 'checksum') !== sum) throw new InvalidArgumentError(`plugin layer: bad header checksum at offset ${offset}`);
    const type = String.fromCharCode(h[156]!);
    const prefix = field(h, 345, 155);
    const name = field(h, 0, 100);
    const path = (prefix ? `${prefix}/${name}` : name).replace(/\/$/, '');
    const size = parseOctal(h, 124, 12, 'size');
    const mode = parseOctal(h, 100, 8, 'mode');
    offset += BLOCK;
    if (type === '5') continue;
    if (type !== '0' && type !== '\0') throw new InvalidArgumentError(`plugin layer: ${JSON.stringify(path)} is not a regular file (type ${JSON.stringify(type)}); plugin layers hold regular files only`);
    const problem = treePathProblem(path);
    if (problem) throw new InvalidArgumentError(`plugin layer: path ${JSON.stringify(path)} ${problem}`);
    if (seen.has(path)) throw new InvalidArgumentError(`plugin layer: ${JSON.stringify(path)} appears twice`);
    seen.add(path);
    if (offset + size > tar.length) throw new InvalidArgumentError(`plugin layer: ${JSON.stringify(path)} is truncated`);
    files.push({ path, executable: (mode & 0o111) !== 0, data: Buffer.from(tar.subarray(offset, offset + size)) });
    offset += Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new InvalidArgumentError('plugin layer: the tar stream has no end marker (truncated)');
}

/** The tree-digest view of files (the same formula as the installed tree's, core's treeDigest). */
export function treeFilesOf(files: readonly TarFile[]): TreeFile[] {
  return files.map((f) => ({ path: f.path, executable: f.executable, size: f.data.length, sha256: createHash('sha256').update(f.data).digest('hex') }));
}
