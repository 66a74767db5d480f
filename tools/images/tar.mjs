// A small, deterministic tar writer for test layers: ustar headers, with a PAX extended header ('x') in front of an
// entry whenever ustar cannot hold it (a path or link target over 100 bytes or not ASCII, an id over 7 octal digits,
// xattrs). Everything about an entry comes from its description, nothing from the file system, so the same entries
// give the same bytes on every machine, and owners, fifos and security.* xattrs need no root to write.
//
// Xattrs go in `SCHILY.xattr.<name>` records, the key GNU tar, containerd's archive package and umoci all read; a
// record's value is raw bytes (PAX lengths count bytes), so binary values such as security.capability survive.

/** @typedef {'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'char' | 'block'} EntryType */

/**
 * One tar entry. `path` is relative, without a leading `./` or `/`; directories need no trailing slash (one is
 * added). `data` only for files; `target` for symlinks (any string) and hard links (the path of an earlier entry).
 * @typedef {object} TarEntry
 * @property {string} path
 * @property {EntryType} type
 * @property {number} [mode] permission bits incl. setuid/setgid/sticky (default 0644 for files, 0755 for dirs, 0777 for symlinks)
 * @property {number} [uid] default 0
 * @property {number} [gid] default 0
 * @property {string} [uname]
 * @property {string} [gname]
 * @property {Buffer | string} [data] file contents
 * @property {string} [target] symlink target or hard-link source path
 * @property {number} [devmajor]
 * @property {number} [devminor]
 * @property {Record<string, Buffer | string>} [xattrs]
 * @property {number} [mtime] seconds since the epoch (default: the writer's mtime)
 */

const BLOCK = 512;
const TYPEFLAG = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const DEFAULT_MODE = { file: 0o644, dir: 0o755, symlink: 0o777, hardlink: 0o644, fifo: 0o644, char: 0o644, block: 0o644 };
/** Largest value of an 8-byte octal field (7 digits and a NUL). */
const MAX_OCTAL_8 = 0o7777777;

/** The fixed mtime of every fixture entry: 2024-01-01T00:00:00Z. */
export const FIXED_MTIME = 1704067200;

/**
 * @param {Buffer} buf
 * @param {number} offset
 * @param {number} length field length including its NUL
 * @param {number} value
 */
function writeOctal(buf, offset, length, value) {
  const text = value.toString(8).padStart(length - 1, '0');
  if (text.length > length - 1) throw new Error(`tar: ${value} does not fit a ${length}-byte octal field`);
  buf.write(text, offset, 'ascii');
  buf[offset + length - 1] = 0;
}

/** @param {string} s */
const isAscii = (s) => /^[\x20-\x7e]*$/.test(s);

/**
 * One PAX record, `<len> <key>=<value>\n`, where `<len>` counts the whole record in bytes, itself included.
 * @param {string} key
 * @param {Buffer} value
 */
function paxRecord(key, value) {
  const rest = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

/**
 * @param {object} h
 * @param {string} h.name
 * @param {number} h.mode
 * @param {number} h.uid
 * @param {number} h.gid
 * @param {number} h.size
 * @param {number} h.mtime
 * @param {string} h.typeflag
 * @param {string} [h.linkname]
 * @param {string} [h.uname]
 * @param {string} [h.gname]
 * @param {number} [h.devmajor]
 * @param {number} [h.devminor]
 */
function header(h) {
  const buf = Buffer.alloc(BLOCK);
  buf.write(h.name, 0, 100, 'utf8');
  writeOctal(buf, 100, 8, h.mode);
  writeOctal(buf, 108, 8, h.uid);
  writeOctal(buf, 116, 8, h.gid);
  writeOctal(buf, 124, 12, h.size);
  writeOctal(buf, 136, 12, h.mtime);
  buf.fill(0x20, 148, 156); // checksum counts as spaces while summing
  buf.write(h.typeflag, 156, 1, 'ascii');
  if (h.linkname) buf.write(h.linkname, 157, 100, 'utf8');
  buf.write('ustar\u000000', 257, 8, 'ascii');
  if (h.uname) buf.write(h.uname, 265, 32, 'utf8');
  if (h.gname) buf.write(h.gname, 297, 32, 'utf8');
  writeOctal(buf, 329, 8, h.devmajor ?? 0);
  writeOctal(buf, 337, 8, h.devminor ?? 0);
  let sum = 0;
  for (const byte of buf) sum += byte;
  buf.write(sum.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  buf[154] = 0;
  buf[155] = 0x20;
  return buf;
}

/** @param {number} size */
const padding = (size) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/**
 * Serialises entries, in the order given, into one uncompressed tar (ending with two zero blocks).
 * @param {Iterable<TarEntry>} entries
 * @param {{ mtime?: number }} [options]
 * @returns {Buffer}
 */
export function writeTar(entries, options = {}) {
  /** @type {Buffer[]} */
  const chunks = [];
  const defaultMtime = options.mtime ?? FIXED_MTIME;
  for (const entry of entries) {
    if (!TYPEFLAG[entry.type]) throw new Error(`tar: ${entry.path}: unknown type ${entry.type}`);
    if (!entry.path || entry.path.startsWith('/') || entry.path.split('/').includes('..')) {
      throw new Error(`tar: bad path ${JSON.stringify(entry.path)}`);
    }
    const name = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
    const data = entry.type === 'file' ? Buffer.from(entry.data ?? '') : Buffer.alloc(0);
    const linkname = entry.type === 'symlink' || entry.type === 'hardlink' ? (entry.target ?? '') : '';
    if ((entry.type === 'symlink' || entry.type === 'hardlink') && !linkname) throw new Error(`tar: ${entry.path}: no target`);
    const uid = entry.uid ?? 0;
    const gid = entry.gid ?? 0;
    const mtime = entry.mtime ?? defaultMtime;

    /** @type {Buffer[]} */
    const pax = [];
    if (Buffer.byteLength(name) > 100 || !isAscii(name)) pax.push(paxRecord('path', Buffer.from(name)));
    if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) pax.push(paxRecord('linkpath', Buffer.from(linkname)));
    if (uid > MAX_OCTAL_8) pax.push(paxRecord('uid', Buffer.from(String(uid))));
    if (gid > MAX_OCTAL_8) pax.push(paxRecord('gid', Buffer.from(String(gid))));
    for (const key of Object.keys(entry.xattrs ?? {}).sort()) {
      pax.push(paxRecord(`SCHILY.xattr.${key}`, Buffer.from(/** @type {Record<string, Buffer | string>} */ (entry.xattrs)[key])));
    }
    if (pax.length > 0) {
      const body = Buffer.concat(pax);
      // A fixed, short name for the extended header itself; readers take the real path from the `path` record.
      const paxName = `PaxHeaders/${Buffer.from(name.replace(/\/$/, '').split('/').pop() ?? 'x').subarray(0, 80).toString('latin1').replace(/[^\x20-\x7e]/g, '_')}`;
      chunks.push(header({ name: paxName, mode: 0o644, uid: 0, gid: 0, size: body.length, mtime, typeflag: 'x' }), body, padding(body.length));
    }
    chunks.push(
      header({
        name: truncateUtf8(name, 100),
        mode: entry.mode ?? DEFAULT_MODE[entry.type],
        uid: Math.min(uid, MAX_OCTAL_8),
        gid: Math.min(gid, MAX_OCTAL_8),
        size: data.length,
        mtime,
        typeflag: TYPEFLAG[entry.type],
        linkname: truncateUtf8(linkname, 100),
        uname: entry.uname,
        gname: entry.gname,
        devmajor: entry.devmajor,
        devminor: entry.devminor,
      }),
    );
    if (data.length > 0) chunks.push(data, padding(data.length));
  }
  chunks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(chunks);
}

/**
 * The longest prefix of `s` that fits `bytes` bytes of UTF-8 (ustar fields of entries that also carry a PAX record).
 * @param {string} s
 * @param {number} bytes
 */
function truncateUtf8(s, bytes) {
  const buf = Buffer.from(s);
  if (buf.length <= bytes) return s;
  let end = bytes;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}
