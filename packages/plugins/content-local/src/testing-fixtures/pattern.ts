/** Deterministic bytes by absolute position, so a test can rebuild any range a child process wrote. */
export function pattern(start: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) {
    const p = start + i;
    buf[i] = (p * 31 + Math.floor(p / 251) * 7 + 13) & 0xff;
  }
  return buf;
}

/** The content of the k-th blob the crash child commits (distinct lengths, so distinct digests). */
export function blobContent(k: number): Buffer {
  return pattern(k * 7919, 64 * 1024 + k);
}

export const ENDLESS_REF = 'crash/endless';
