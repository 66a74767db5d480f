import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemListenBacklog } from './listen.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-listen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (text: string) => {
  const p = join(dir, String(Math.random()));
  writeFileSync(p, text);
  return p;
};

describe('systemListenBacklog', () => {
  it('is net.core.somaxconn, as Go reads it', () => {
    expect(systemListenBacklog()).toBe(Math.min(Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')), 65535));
    expect(systemListenBacklog(file('8192\n'))).toBe(8192);
  });

  it('caps at 65535 and falls back to 4096 when the value is missing or garbage', () => {
    expect(systemListenBacklog(file('1000000'))).toBe(65535);
    expect(systemListenBacklog(join(dir, 'missing'))).toBe(4096);
    expect(systemListenBacklog(file('lots'))).toBe(4096);
    expect(systemListenBacklog(file('0'))).toBe(4096);
  });
});
