// Tar headers for the layers Diff writes: ustar blocks, with a PAX extended header in front whenever a field does
// not fit ustar (long or non-ASCII names and link targets, ids over 2097151, sizes over 8 GiB) or the entry has
// xattrs (SCHILY.xattr.*, raw bytes). Times are whole seconds, as containerd writes them.
import { BLOCK, TarType } from './header.js';

export interface WriteEntry {
  /** Relative name without a leading '/'; directories end with '/'. */
  readonly name: string;
  readonly type: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly linkname?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly xattrs?: ReadonlyMap<string, Buffer>;
}

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/** The header blocks of an entry (a PAX header first when needed); its data and `padding(size)` follow. */
export function entryHeader(e: WriteEntry): Buffer {
  const records: Buffer[] = [];
  const name = splitName(e.name);
  if (!name) records.push(paxRecord('path', Buffer.from(e.name, 'utf8')));
  const linkname = e.linkname ?? '';
  if (!fitsAscii(linkname, 100)) records.push(paxRecord('linkpath', Buffer.from(linkname, 'utf8')));
  if (e.uid > MAX_OCTAL_7) records.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if (e.gid > MAX_OCTAL_7) records.push(paxRecord('gid', Buffer.from(String(e.gid))));
  if (e.size > MAX_OCTAL_11) records.push(paxRecord('size', Buffer.from(String(e.size))));
  if (e.xattrs) {
    for (const [key, value] of [...e.xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      records.push(paxRecord(`SCHILY.xattr.${key}`, value));
    }
  }
  const main = ustarBlock({
    name: name?.name ?? truncate(e.name, 100),
    prefix: name?.prefix ?? '',
    type: e.type,
    mode: e.mode,
    uid: Math.min(e.uid, MAX_OCTAL_7),
    gid: Math.min(e.gid, MAX_OCTAL_7),
    size: Math.min(e.size, MAX_OCTAL_11),
    mtime: Math.max(0, Math.min(e.mtime, MAX_OCTAL_11)),
    linkname: fitsAscii(linkname, 100) ? linkname : truncate(linkname, 100),
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  });
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const paxName = `PaxHeaders.0/${truncate(name?.name ?? e.name.replace(/\/$/, '').split('/').pop() ?? '', 80)}`;
  const paxHeader = ustarBlock({
    name: paxName,
    prefix: '',
    type: TarType.PaxLocal,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, body, Buffer.alloc(padding(body.length)), main]);
}

/** Zero bytes that complete the data of an entry of `size` bytes to a whole block. */
export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** The end of an archive: two zero blocks. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

/** One `<length> <key>=<value>\n` record; the length counts its own digits. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const rest = 1 + Buffer.byteLength(key) + 1 + value.length + 1;
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')]);
}

function fitsAscii(s: string, max: number): boolean {
  return s.length <= max && /^[\x01-\x7f]*$/.test(s);
}

function truncate(s: string, max: number): string {
  // ASCII only, so the ustar field is valid even where PAX carries the real value.
  return s.replace(/[^\x01-\x7f]/g, '_').slice(0, max);
}

/** ustar's name/prefix split (name ≤ 100 bytes, prefix ≤ 155, split at a '/'), or undefined when it cannot fit. */
function splitName(name: string): { name: string; prefix: string } | undefined {
  if (!/^[\x01-\x7f]*$/.test(name)) return undefined;
  if (name.length <= 100) return { name, prefix: '' };
  if (name.length > 256) return undefined;
  // The last '/' that leaves at most 100 bytes after it and at most 155 before it (a directory's trailing '/' stays
  // in the name part).
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/' || i === name.length - 1) continue;
    if (name.length - i - 1 > 100) break;
    if (i <= 155) return { prefix: name.slice(0, i), name: name.slice(i + 1) };
  }
  return undefined;
}

interface Fields {
  name: string;
  prefix: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

function ustarBlock(f: Fields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'latin1');
  octal(b, 100, 8, f.mode & 0o7777);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, f.mtime);
  b.write(f.type, 156, 1, 'latin1');
  b.write(f.linkname, 157, 100, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  if (f.type === TarType.Char || f.type === TarType.Block) {
    octal(b, 329, 8, f.devmajor);
    octal(b, 337, 8, f.devminor);
  }
  b.write(f.prefix, 345, 155, 'latin1');
  // Checksum: computed with its own field as spaces, written as 6 octal digits, NUL, space.
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** An octal field of `length` bytes: `length - 1` zero-padded digits and a NUL. */
function octal(b: Buffer, offset: number, length: number, value: number): void {
  b.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}
