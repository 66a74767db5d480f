import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findMessageType, messageCodec } from '@berth/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeStats, V2_METRICS_TYPE_URL } from './encode.js';
import { U64_MAX } from './files.js';
import { parseIoStat, readV2Stats } from './v2-stats.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-cg2-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tree(files: Record<string, string>): Promise<string> {
  const cg = join(dir, 'default', 'web');
  await mkdir(cg, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(cg, name), text);
  return cg;
}

/** Decodes with 64-bit integers as strings, so the test sees every bit that went on the wire. */
function decodeExact(typeUrl: string, value: Uint8Array): Record<string, any> {
  const type = findMessageType(typeUrl)!;
  return type.toObject(type.decode(value), { longs: String, defaults: true, arrays: true });
}

describe('cgroup v2 statistics from a fixture tree', () => {
  it('reads cpu.stat, memory.stat, the single-value files, memory.events, io.stat and hugetlb', async () => {
    const cg = await tree({
      'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 300\n',
      'memory.stat': 'anon 4096\nfile 8192\nshmem 67108864\npgfault 12\nworkingset_refault 3\nthp_collapse_alloc 1\nunknown_key 99\n',
      'memory.current': '71303168\n',
      'memory.max': 'max\n',
      'memory.swap.current': '0\n',
      'memory.swap.max': '1073741824\n',
      'memory.events': 'low 0\nhigh 1\nmax 2\noom 3\noom_kill 1\n',
      'pids.current': '2\n',
      'pids.max': '512\n',
      'io.stat': '254:0 rbytes=1024 wbytes=2048 rios=3 wios=4 dbytes=0 dios=0\n8:16 rbytes=18446744073709551615 wbytes=0 rios=0 wios=0\n',
      'hugetlb.2MB.current': '2097152\n',
      'hugetlb.2MB.max': 'max\n',
      'hugetlb.1GB.current': '0\n',
      'hugetlb.1GB.max': '0\n',
    });
    const m = await readV2Stats(cg);
    expect(m.cpu).toEqual({ usage_usec: 1500n, user_usec: 1000n, system_usec: 500n, nr_periods: 7n, nr_throttled: 2n, throttled_usec: 300n });
    expect(m.memory).toMatchObject({ anon: 4096n, file: 8192n, shmem: 67108864n, pgfault: 12n, workingset_refault: 3n, thp_collapse_alloc: 1n });
    expect(m.memory).toMatchObject({ usage: 71303168n, usage_limit: U64_MAX, swap_usage: 0n, swap_limit: 1073741824n, slab: 0n });
    expect(m.memory_events).toEqual({ low: 0n, high: 1n, max: 2n, oom: 3n, oom_kill: 1n });
    expect(m.pids).toEqual({ current: 2n, limit: 512n });
    expect(m.io.usage).toEqual([
      { major: 254n, minor: 0n, rbytes: 1024n, wbytes: 2048n, rios: 3n, wios: 4n },
      { major: 8n, minor: 16n, rbytes: U64_MAX, wbytes: 0n, rios: 0n, wios: 0n },
    ]);
    expect(m.hugetlb).toEqual([
      { pagesize: '1GB', current: 0n, max: 0n },
      { pagesize: '2MB', current: 2097152n, max: U64_MAX },
    ]);
  });

  it('gives zeros for missing files and leaves memory_events out without memory.events', async () => {
    const cg = await tree({ 'pids.current': '1\n', 'pids.max': 'max\n' });
    const m = await readV2Stats(cg);
    expect(m.pids).toEqual({ current: 1n, limit: U64_MAX });
    expect(m.cpu.usage_usec).toBe(0n);
    expect(m.memory.usage).toBe(0n);
    expect(m.memory_events).toBeUndefined();
    expect(m.io.usage).toEqual([]);
    expect(m.hugetlb).toEqual([]);
  });

  it('skips malformed lines instead of failing', () => {
    expect(parseIoStat('garbage\n254:x rbytes=1\n\n1:2 rbytes=notanumber wbytes=5\n')).toEqual([
      { major: 1n, minor: 2n, rbytes: 0n, wbytes: 5n, rios: 0n, wios: 0n },
    ]);
  });

  it('encodes io.containerd.cgroups.v2.Metrics exactly, uint64 maxima included', async () => {
    const cg = await tree({
      'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n',
      'memory.current': '9007199254740993\n',
      'memory.max': 'max\n',
      'memory.events': 'oom 3\noom_kill 1\n',
      'pids.current': '2\n',
      'pids.max': 'max\n',
      'io.stat': '254:0 rbytes=1024 wbytes=2048 rios=3 wios=4\n',
    });
    const any = encodeStats({ version: 2, metrics: await readV2Stats(cg) });
    expect(any.type_url).toBe(V2_METRICS_TYPE_URL);
    const exact = decodeExact(any.type_url, any.value);
    expect(exact.pids).toEqual({ current: '2', limit: '18446744073709551615' });
    // 2^53 + 1: a JS number would have lost the last bit.
    expect(exact.memory.usage).toBe('9007199254740993');
    expect(exact.memory.usage_limit).toBe('18446744073709551615');
    expect(exact.cpu).toMatchObject({ usage_usec: '1500', user_usec: '1000', system_usec: '500' });
    expect(exact.memory_events).toMatchObject({ oom: '3', oom_kill: '1' });
    expect(exact.io.usage).toEqual([{ major: '254', minor: '0', rbytes: '1024', wbytes: '2048', rios: '3', wios: '4' }]);
    // The project's codec reads it back (field numbers checked against containerd/cgroups by the api package).
    expect(messageCodec('io.containerd.cgroups.v2.Metrics').decode(any.value).cpu?.usage_usec).toBe(1500);
  });
});
