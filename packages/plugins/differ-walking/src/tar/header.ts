// The 512-byte tar header and the PAX records that amend it: what a layer's tar (GNU tar, Go's archive/tar, BuildKit,
// Docker) carries. Read and written here, by hand, because the npm readers lose what layers depend on: tar-stream
// decodes PAX values as UTF-8 (a binary `security.capability` comes out corrupted) and ignores PAX uid/gid; node-tar
// drops xattrs. This file imports nothing heavy: it runs inside the apply workers.

export const BLOCK = 512;

/** Entry types (the typeflag byte) that the applier acts on; the extended headers are consumed by the reader. */
export const TarType = {
  File: '0',
  Link: '1',
  Symlink: '2',
  Char: '3',
  Block: '4',
  Dir: '5',
  Fifo: '6',
  /** Contiguous file: a regular file everywhere that matters. */
  Contiguous: '7',
  PaxLocal: 'x',
  PaxGlobal: 'g',
  GnuLongName: 'L',
  GnuLongLink: 'K',
} as const;

/** Seconds and nanoseconds (the kernel's struct timespec; @berth/sys's Timespec has the same shape). */
export interface TarTime {
  readonly sec: number;
  readonly nsec: number;
}

/** One entry as the applier sees it: long names, PAX overrides and GNU extensions already folded in. */
export interface TarEntry {
  /** The name as the archive gives it (not normalized: the applier checks it). */
  readonly name: string;
  /** The typeflag, with V7 regular files ('\0') and contiguous ones mapped to '0', a V7 name ending in '/' to '5'. */
  readonly type: string;
  /** Permission bits with setuid, setgid and sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Bytes of data that follow the header (for a PAX sparse file: the data as stored, map included). */
  readonly size: number;
  readonly mtime: TarTime;
  /** PAX or GNU atime when the archive has one. */
  readonly atime: TarTime | undefined;
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** SCHILY.xattr.* records, name to raw bytes (never decoded as text). */
  readonly xattrs: ReadonlyMap<string, Buffer> | undefined;
  /** GNU PAX sparse format 1.0: the file's real size; its data starts with the map (see reader). */
  readonly sparseRealSize: number | undefined;
}

/** A malformed archive. `errdef` lets @berth/core classify it (invalid-argument) without this file importing core. */
export class TarFormatError extends Error {
  readonly errdef = 'invalid-argument' as const;
  constructor(message: string) {
    super(`invalid tar: ${message}`);
    this.name = 'TarFormatError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes [start, end) up to the first NUL, as UTF-8; a name that is not UTF-8 is refused (Node paths are strings). */
export function cString(buf: Buffer, start: number, end: number, what: string): string {
  let stop = start;
  let ascii = true;
  for (; stop < end; stop++) {
    const c = buf[stop]!;
    if (c === 0) break;
    if (c >= 0x80) ascii = false;
  }
  if (ascii) return buf.toString('latin1', start, stop);
  try {
    return utf8.decode(buf.subarray(start, stop));
  } catch {
    throw new TarFormatError(`${what} is not UTF-8: ${buf.subarray(start, stop).toString('hex')}`);
  }
}

/** A numeric field: octal digits (NUL/space padded) or GNU base-256 (first byte's high bit set). */
export function parseNumber(buf: Buffer, start: number, length: number, what: string): number {
  const first = buf[start]!;
  if (first & 0x80) {
    if (first === 0xff) throw new TarFormatError(`negative ${what}`);
    let value = first & 0x7f;
    for (let i = start + 1; i < start + length; i++) {
      value = value * 256 + buf[i]!;
      if (value > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`${what} is too large`);
    }
    return value;
  }
  let i = start;
  const end = start + length;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new TarFormatError(`${what} is not an octal number: ${JSON.stringify(buf.toString('latin1', start, end))}`);
    value = value * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c !== 0 && c !== 0x20) throw new TarFormatError(`${what} is not an octal number: ${JSON.stringify(buf.toString('latin1', start, end))}`);
  }
  return digits === 0 ? 0 : value;
}

/** Whether a block is all zeros (the end-of-archive marker). */
export function isZeroBlock(buf: Buffer, offset: number): boolean {
  for (let i = offset; i < offset + BLOCK; i += 4) {
    if (buf.readUInt32LE(i) !== 0) return false;
  }
  return true;
}

/** The header's checksum: the sum of its bytes with the checksum field counted as spaces (unsigned and signed). */
function checksums(buf: Buffer, offset: number): [number, number] {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : buf[offset + i]!;
    unsigned += c;
    signed += c >= 0x80 ? c - 256 : c;
  }
  return [unsigned, signed];
}

/** The fields of one header block, before PAX records and GNU long names are applied. */
export interface RawHeader {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: TarTime;
  atime: TarTime | undefined;
  linkname: string;
  devmajor: number;
  devminor: number;
}

const MAGIC_USTAR = 0x757374617200; // "ustar\0" (POSIX ustar and PAX; version "00")
const MAGIC_GNU = 0x757374617220; // "ustar " (GNU; version " \0")

/** Parses the header block at `offset`; throws TarFormatError on a bad checksum or field. */
export function parseHeader(buf: Buffer, offset: number): RawHeader {
  const stored = parseNumber(buf, offset + 148, 8, 'header checksum');
  const [unsigned, signed] = checksums(buf, offset);
  if (stored !== unsigned && stored !== signed) {
    throw new TarFormatError(`header checksum mismatch (stored ${stored}, computed ${unsigned}) at a header block`);
  }
  const magic = buf.readUIntBE(offset + 257, 6);
  const ustar = magic === MAGIC_USTAR;
  const gnu = magic === MAGIC_GNU;
  let name = cString(buf, offset, offset + 100, 'name');
  if (ustar) {
    const prefix = cString(buf, offset + 345, offset + 500, 'name prefix');
    if (prefix) name = `${prefix}/${name}`;
  }
  // '\0' (V7) is resolved by the reader once the final name is known; contiguous files are regular files.
  const flag = String.fromCharCode(buf[offset + 156]!);
  const type = flag === TarType.Contiguous ? TarType.File : flag;
  const numeric = ustar || gnu;
  return {
    name,
    type,
    mode: parseNumber(buf, offset + 100, 8, 'mode') & 0o7777,
    uid: parseNumber(buf, offset + 108, 8, 'uid'),
    gid: parseNumber(buf, offset + 116, 8, 'gid'),
    size: parseNumber(buf, offset + 124, 12, 'size'),
    mtime: { sec: parseNumber(buf, offset + 136, 12, 'mtime'), nsec: 0 },
    atime: gnu && buf[offset + 345] !== 0 ? { sec: parseNumber(buf, offset + 345, 12, 'atime'), nsec: 0 } : undefined,
    linkname: cString(buf, offset + 157, offset + 257, 'link name'),
    devmajor: numeric ? parseNumber(buf, offset + 329, 8, 'devmajor') : 0,
    devminor: numeric ? parseNumber(buf, offset + 337, 8, 'devminor') : 0,
  };
}

/** The records of a PAX extended header: strings, except SCHILY.xattr.* values, which stay raw bytes. */
export interface PaxRecords {
  readonly strings: Map<string, string>;
  readonly xattrs: Map<string, Buffer>;
}

/** Parses `<length> <key>=<value>\n` records (the length counts the whole record, its own digits included). */
export function parsePax(data: Buffer): PaxRecords {
  const strings = new Map<string, string>();
  const xattrs = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // padding some writers leave
    const space = data.indexOf(0x20, pos);
    if (space < 0 || space - pos > 20) throw new TarFormatError('PAX record without a length');
    const lengthText = data.toString('latin1', pos, space);
    if (!/^[1-9][0-9]*$/.test(lengthText)) throw new TarFormatError(`PAX record length ${JSON.stringify(lengthText)}`);
    const length = Number(lengthText);
    const end = pos + length;
    if (end > data.length || data[end - 1] !== 0x0a) throw new TarFormatError('PAX record runs past its header or lacks its newline');
    const eq = data.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= end) throw new TarFormatError('PAX record without "="');
    const key = cString(data, space + 1, eq, 'PAX key');
    if (key.length === 0) throw new TarFormatError('PAX record with an empty key');
    const value = data.subarray(eq + 1, end - 1);
    if (key.startsWith('SCHILY.xattr.')) {
      xattrs.set(key.slice('SCHILY.xattr.'.length), Buffer.from(value));
    } else {
      let text: string;
      try {
        text = utf8.decode(value);
      } catch {
        throw new TarFormatError(`PAX record ${key} is not UTF-8`);
      }
      strings.set(key, text);
    }
    pos = end;
  }
  return { strings, xattrs };
}

/** A PAX decimal time (`1700000000.123456789`, possibly negative) as seconds and nanoseconds. */
export function parsePaxTime(text: string, what: string): TarTime {
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(text);
  if (!m) throw new TarFormatError(`PAX ${what} ${JSON.stringify(text)}`);
  const whole = Number(m[2]);
  const frac = Number(((m[3] ?? '') + '000000000').slice(0, 9));
  if (!Number.isSafeInteger(whole)) throw new TarFormatError(`PAX ${what} out of range`);
  if (m[1] === '-') return frac === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1_000_000_000 - frac };
  return { sec: whole, nsec: frac };
}

/** A PAX decimal integer (uid, gid, size, sparse fields). */
export function parsePaxInt(text: string, what: string): number {
  if (!/^[0-9]+$/.test(text)) throw new TarFormatError(`PAX ${what} ${JSON.stringify(text)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new TarFormatError(`PAX ${what} out of range`);
  return n;
}
