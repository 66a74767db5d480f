// A streaming (push) tar reader: feed it chunks in order, it calls the sink synchronously for each entry and each
// piece of its data, without copying file data (the sink gets subarrays of the chunks it was fed). Synchronous on
// purpose: the applier makes its fs calls in the same pass, in order, inside a worker thread.
import {
  BLOCK,
  cString,
  isZeroBlock,
  parseHeader,
  parsePax,
  parsePaxInt,
  parsePaxTime,
  TarFormatError,
  TarType,
  type PaxRecords,
  type RawHeader,
  type TarEntry,
} from './header.js';

export interface TarSink {
  /** A new entry; `data` follows with exactly `entry.size` bytes (none for header-only types), then `end`. */
  entry(entry: TarEntry): void;
  data(chunk: Buffer): void;
  end(): void;
}

/** The largest PAX header or GNU long name accepted (Go's archive/tar, and so containerd, allow 1 MiB). */
export const MAX_EXTENDED_HEADER = 1 << 20;

/** Types that never carry data, whatever their size field says (as Go's reader, which containerd uses, treats them). */
const HEADER_ONLY = new Set<string>([TarType.Link, TarType.Symlink, TarType.Char, TarType.Block, TarType.Dir, TarType.Fifo]);

type State = 'header' | 'data' | 'padding' | 'extended' | 'end';

export class TarReader {
  private state: State = 'header';
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  /** Data bytes left in the current entry, or in the extended header being collected. */
  private remaining = 0;
  private padding = 0;
  private extended: { type: string; parts: Buffer[]; size: number } | undefined;
  private pax: PaxRecords | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private entries = 0;

  constructor(private readonly sink: TarSink) {}

  /** Whether the end-of-archive block was seen (what follows it is ignored). */
  get ended(): boolean {
    return this.state === 'end';
  }

  /** Number of entries handed to the sink. */
  get count(): number {
    return this.entries;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case 'end':
          return;
        case 'header': {
          if (this.blockFill === 0 && len - pos >= BLOCK) {
            this.header(chunk, pos);
            pos += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.blockFill, len - pos);
            chunk.copy(this.block, this.blockFill, pos, pos + n);
            this.blockFill += n;
            pos += n;
            if (this.blockFill === BLOCK) {
              this.blockFill = 0;
              this.header(this.block, 0);
            }
          }
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, len - pos);
          this.sink.data(chunk.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.endEntry();
          break;
        }
        case 'extended': {
          const n = Math.min(this.remaining, len - pos);
          // Copied: the chunk's memory is reused by the caller once push returns.
          this.extended!.parts.push(Buffer.from(chunk.subarray(pos, pos + n)));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.endExtended();
          break;
        }
        case 'padding': {
          const n = Math.min(this.padding, len - pos);
          pos += n;
          this.padding -= n;
          if (this.padding === 0) this.state = 'header';
          break;
        }
      }
    }
  }

  /** The input ended: an archive cut off inside an entry or header is an error (one without end blocks is not). */
  finish(): void {
    if (this.state === 'end') return;
    if (this.state === 'header' && this.blockFill === 0) {
      if (this.pax || this.longName !== undefined || this.longLink !== undefined) throw new TarFormatError('archive ends after an extended header');
      return;
    }
    throw new TarFormatError('unexpected end of archive (cut off inside an entry)');
  }

  private header(buf: Buffer, offset: number): void {
    if (isZeroBlock(buf, offset)) {
      this.state = 'end';
      return;
    }
    const raw = parseHeader(buf, offset);
    switch (raw.type) {
      case TarType.PaxLocal:
      case TarType.PaxGlobal:
      case TarType.GnuLongName:
      case TarType.GnuLongLink:
        if (raw.size > MAX_EXTENDED_HEADER) throw new TarFormatError(`extended header of ${raw.size} bytes (at most ${MAX_EXTENDED_HEADER})`);
        this.extended = { type: raw.type, parts: [], size: raw.size };
        this.remaining = raw.size;
        this.padding = pad(raw.size);
        if (raw.size === 0) this.endExtended();
        else this.state = 'extended';
        return;
    }
    const entry = this.resolve(raw);
    this.entries++;
    this.sink.entry(entry);
    this.remaining = entry.size;
    this.padding = pad(entry.size);
    if (entry.size === 0) this.endEntry();
    else this.state = 'data';
  }

  private endEntry(): void {
    this.sink.end();
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  private endExtended(): void {
    const { type, parts, size } = this.extended!;
    this.extended = undefined;
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    switch (type) {
      case TarType.PaxLocal:
        this.pax = parsePax(data);
        break;
      case TarType.PaxGlobal:
        // Checked for well-formedness, then ignored, as containerd does ("PAX Global Extended Headers found and ignored").
        parsePax(data);
        break;
      case TarType.GnuLongName:
        this.longName = cString(data, 0, data.length, 'GNU long name');
        break;
      case TarType.GnuLongLink:
        this.longLink = cString(data, 0, data.length, 'GNU long link name');
        break;
    }
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  /** The entry from its header and the extended headers before it, which then no longer apply. */
  private resolve(raw: RawHeader): TarEntry {
    const pax = this.pax;
    const longName = this.longName;
    const longLink = this.longLink;
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    let name = longName ?? raw.name;
    let linkname = longLink ?? raw.linkname;
    let { uid, gid, size, mtime, atime } = raw;
    let sparseRealSize: number | undefined;
    if (pax) {
      const s = pax.strings;
      const v = (k: string) => s.get(k);
      if (v('path') !== undefined) name = v('path')!;
      if (v('linkpath') !== undefined) linkname = v('linkpath')!;
      if (v('uid') !== undefined) uid = parsePaxInt(v('uid')!, 'uid');
      if (v('gid') !== undefined) gid = parsePaxInt(v('gid')!, 'gid');
      if (v('size') !== undefined) size = parsePaxInt(v('size')!, 'size');
      if (v('mtime') !== undefined) mtime = parsePaxTime(v('mtime')!, 'mtime');
      if (v('atime') !== undefined) atime = parsePaxTime(v('atime')!, 'atime');
      if (v('GNU.sparse.major') !== undefined || v('GNU.sparse.map') !== undefined || v('GNU.sparse.offset') !== undefined) {
        if (v('GNU.sparse.major') !== '1' || v('GNU.sparse.minor') !== '0') {
          throw new TarFormatError(`${name}: GNU sparse format ${v('GNU.sparse.major') ?? '0'}.${v('GNU.sparse.minor') ?? 'x'} is not supported (only 1.0)`);
        }
        if (v('GNU.sparse.name') !== undefined) name = v('GNU.sparse.name')!;
        sparseRealSize = parsePaxInt(v('GNU.sparse.realsize') ?? '', 'GNU.sparse.realsize');
      }
    }
    let type = raw.type;
    if (type === '\0') type = name.endsWith('/') ? TarType.Dir : TarType.File;
    if (HEADER_ONLY.has(type)) size = 0;
    return {
      name,
      type,
      mode: raw.mode,
      uid,
      gid,
      size,
      mtime,
      atime,
      linkname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs: pax && pax.xattrs.size > 0 ? pax.xattrs : undefined,
      sparseRealSize,
    };
  }
}

function pad(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}
