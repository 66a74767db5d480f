import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readTarGz, writeTarGz } from './tar.js';

const files = [
  { path: 'package.json', executable: false, data: Buffer.from('{}') },
  { path: 'dist/index.js', executable: false, data: Buffer.from('export default 1;\n') },
  { path: 'bin/run', executable: true, data: Buffer.alloc(1500, 7) },
  { path: `deep/${'d'.repeat(90)}/${'f'.repeat(90)}.txt`, executable: false, data: Buffer.from('long path') },
];

/** A tar header block for a hand-made entry (what other tools might put in a layer). */
function entry(name: string, type: string, data = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}

describe('plugin layer tar', () => {
  it('is deterministic whatever the input order, and reads back what it wrote', () => {
    const a = writeTarGz(files);
    const b = writeTarGz([...files].reverse());
    expect(a.equals(b)).toBe(true);
    const back = readTarGz(a);
    expect(back.map((f) => f.path)).toEqual([...files.map((f) => f.path)].sort());
    for (const f of files) {
      const got = back.find((x) => x.path === f.path)!;
      expect(got.data.equals(f.data)).toBe(true);
      expect(got.executable).toBe(f.executable);
    }
  });

  it('refuses links, unsafe paths, duplicates and truncation with a clear message', () => {
    const end = Buffer.alloc(1024);
    expect(() => readTarGz(gzipSync(Buffer.concat([entry('link', '2'), end])))).toThrow(/is not a regular file \(type "2"\)/);
    expect(() => readTarGz(gzipSync(Buffer.concat([entry('../escape', '0', Buffer.from('x')), end])))).toThrow(/has a "\.\." segment/);
    expect(() => readTarGz(gzipSync(Buffer.concat([entry('/etc/passwd', '0'), end])))).toThrow(/not a relative POSIX path/);
    expect(() => readTarGz(gzipSync(Buffer.concat([entry('a', '0'), entry('a', '0'), end])))).toThrow(/appears twice/);
    expect(() => readTarGz(gzipSync(entry('a', '0', Buffer.from('data'))))).toThrow(/no end marker/);
    expect(() => readTarGz(Buffer.from([0x1f, 0x8b, 1, 2, 3]))).toThrow(/not a readable gzip stream/);
    const bad = entry('a', '0');
    bad[0] ^= 1;
    expect(() => readTarGz(Buffer.concat([bad, end]))).toThrow(/bad header checksum/);
    expect(() => writeTarGz([{ path: '../x', executable: false, data: Buffer.alloc(0) }])).toThrow(/"\.\." segment/);
    expect(readTarGz(gzipSync(Buffer.concat([entry('dir/', '5'), entry('dir/a', '0', Buffer.from('ok')), end]))).map((f) => f.path)).toEqual(['dir/a']);
  });
});
