import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// koffi's native module shows up in the process's memory maps once loaded. This file runs in its own worker
// process (vitest isolates test files), so nothing else here has loaded it.
const koffiMapped = () => readFileSync('/proc/self/maps', 'utf8').includes('koffi');

describe('lazy binding', () => {
  it('importing @berth/sys does not load koffi; the first call that needs it does', async () => {
    expect(koffiMapped()).toBe(false);
    const sys = await import('./index.js');
    expect(sys.MS_BIND).toBe(0x1000);
    sys.parseMountOptions(['ro']);
    expect(koffiMapped()).toBe(false);
    expect(sys.ffiStatus()).toEqual({ loaded: true });
    expect(koffiMapped()).toBe(true);
  });
});
