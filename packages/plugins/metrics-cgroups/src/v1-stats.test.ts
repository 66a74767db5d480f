import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findMessageType } from '@berth/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeStats, V1_METRICS_TYPE_URL } from './encode.js';
import { U64_MAX } from './files.js';
import { detectHierarchy } from './hierarchy.js';
import { devicesOf, parseBlkioEntries, readV1Stats } from './v1-stats.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-cg1-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function controller(name: string, files: Record<string, string>): Promise<string> {
  const cg = join(dir, name, 'default', 'web');
  await mkdir(cg, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(cg, file), text);
  return cg;
}

const PARTITIONS = 'major minor  #blocks  name\n\n 254        0  268435456 vda\n   8       16    1048576 sdb\n';

function decodeExact(typeUrl: string, value: Uint8Array): Record<string, any> {
  const type = findMessageType(typeUrl)!;
  return type.toObject(type.decode(value), { longs: String, defaults: true, arrays: true });
}

describe('cgroup v1 statistics from fixture trees', () => {
  it('reads every controller as containerd does (ticks to nanoseconds, pgpgin to pg_pg_in, memsw to swap)', async () => {
    const dirs = new Map([
      ['cpuacct', await controller('cpuacct', {
        'cpuacct.usage': '123456789\n',
        'cpuacct.usage_percpu': '100000000 23456789 \n',
        'cpuacct.stat': 'user 7\nsystem 3\n',
      })],
      ['cpu', await controller('cpu', { 'cpu.stat': 'nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n' })],
      ['memory', await controller('memory', {
        'memory.stat': 'cache 4096\nrss 8192\npgpgin 5\nhierarchical_memory_limit 9223372036854771712\nhierarchical_memsw_limit 9223372036854771712\ntotal_pgmajfault 2\n',
        'memory.usage_in_bytes': '12288\n',
        'memory.limit_in_bytes': '9223372036854771712\n',
        'memory.max_usage_in_bytes': '65536\n',
        'memory.failcnt': '0\n',
        'memory.kmem.usage_in_bytes': '1024\n',
        'memory.kmem.limit_in_bytes': '-1\n',
        'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
      })],
      ['pids', await controller('pids', { 'pids.current': '3\n', 'pids.max': 'max\n' })],
      ['blkio', await controller('blkio', {
        'blkio.throttle.io_service_bytes': '254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 12288\n254:0 Discard 0\n254:0 Total 12288\nTotal 12288\n',
        'blkio.throttle.io_serviced': '254:0 Read 1\n254:0 Write 2\nTotal 3\n',
      })],
      ['hugetlb', await controller('hugetlb', {
        'hugetlb.2MB.usage_in_bytes': '2097152\n',
        'hugetlb.2MB.max_usage_in_bytes': '4194304\n',
        'hugetlb.2MB.failcnt': '1\n',
      })],
    ]);
    const m = await readV1Stats({ dirs, partitions: PARTITIONS });
    expect(m.cpu).toEqual({
      usage: { total: 123456789n, user: 70_000_000n, kernel: 30_000_000n, per_cpu: [100000000n, 23456789n] },
      throttling: { periods: 10n, throttled_periods: 4n, throttled_time: 5000n },
    });
    expect(m.memory).toMatchObject({
      cache: 4096n,
      rss: 8192n,
      pg_pg_in: 5n,
      hierarchical_memory_limit: 9223372036854771712n,
      hierarchical_swap_limit: 9223372036854771712n,
      total_pg_maj_fault: 2n,
      dirty: 0n,
      usage: { usage: 12288n, limit: 9223372036854771712n, max: 65536n, failcnt: 0n },
      // No memsw files (swap accounting off): zeros, not a failure.
      swap: { usage: 0n, limit: 0n, max: 0n, failcnt: 0n },
      // -1 reads as 0, as containerd's parseUint has it.
      kernel: { usage: 1024n, limit: 0n, max: 0n, failcnt: 0n },
    });
    expect(m.memory_oom_control).toEqual({ oom_kill_disable: 0n, under_oom: 0n, oom_kill: 2n });
    expect(m.pids).toEqual({ current: 3n, limit: 0n });
    expect(m.blkio?.io_service_bytes_recursive).toEqual([
      { op: 'Read', device: '/dev/vda', major: 254n, minor: 0n, value: 4096n },
      { op: 'Write', device: '/dev/vda', major: 254n, minor: 0n, value: 8192n },
      { op: 'Sync', device: '/dev/vda', major: 254n, minor: 0n, value: 0n },
      { op: 'Async', device: '/dev/vda', major: 254n, minor: 0n, value: 12288n },
      { op: 'Discard', device: '/dev/vda', major: 254n, minor: 0n, value: 0n },
      { op: 'Total', device: '/dev/vda', major: 254n, minor: 0n, value: 12288n },
    ]);
    expect(m.blkio?.io_serviced_recursive.map((e) => [e.op, e.value])).toEqual([['Read', 1n], ['Write', 2n]]);
    expect(m.hugetlb).toEqual([{ pagesize: '2MB', usage: 2097152n, max: 4194304n, failcnt: 1n }]);

    const any = encodeStats({ version: 1, metrics: m });
    expect(any.type_url).toBe(V1_METRICS_TYPE_URL);
    const exact = decodeExact(any.type_url, any.value);
    expect(exact.cpu.usage).toEqual({ total: '123456789', kernel: '30000000', user: '70000000', per_cpu: ['100000000', '23456789'] });
    expect(exact.memory.usage.limit).toBe('9223372036854771712');
    expect(exact.memory.hierarchical_swap_limit).toBe('9223372036854771712');
    expect(exact.memory.pg_pg_in).toBe('5');
    expect(exact.memory_oom_control.oom_kill).toBe('2');
    expect(exact.pids).toEqual({ current: '3', limit: '0' });
    expect(exact.blkio.io_service_bytes_recursive[0]).toEqual({ op: 'Read', device: '/dev/vda', major: '254', minor: '0', value: '4096' });
    expect(exact.hugetlb).toEqual([{ usage: '2097152', max: '4194304', failcnt: '1', pagesize: '2MB' }]);
  });

  it('leaves out the sections of controllers it has no directory or files for', async () => {
    const dirs = new Map([['pids', await controller('pids', { 'pids.current': '1\n', 'pids.max': '100\n' })], ['memory', join(dir, 'nowhere')]]);
    const m = await readV1Stats({ dirs });
    expect(m).toEqual({ hugetlb: [], pids: { current: 1n, limit: 100n } });
  });

  it('prefers CFQ files that hold entries and falls back to the throttle files when they are empty', async () => {
    const cfq = await controller('blkio', {
      'blkio.io_serviced_recursive': '8:16 Read 9\nTotal 9\n',
      'blkio.io_service_bytes_recursive': '8:16 Read 36864\n',
      'blkio.sectors_recursive': '8:16 72\n',
      'blkio.throttle.io_serviced': '8:16 Read 1\n',
    });
    const m = await readV1Stats({ dirs: new Map([['blkio', cfq]]), partitions: PARTITIONS });
    expect(m.blkio?.io_serviced_recursive).toEqual([{ op: 'Read', device: '/dev/sdb', major: 8n, minor: 16n, value: 9n }]);
    expect(m.blkio?.sectors_recursive).toEqual([{ op: '', device: '/dev/sdb', major: 8n, minor: 16n, value: 72n }]);
    await writeFile(join(cfq, 'blkio.io_serviced_recursive'), 'Total 0\n');
    await writeFile(join(cfq, 'blkio.io_service_bytes_recursive'), '');
    await writeFile(join(cfq, 'blkio.sectors_recursive'), '');
    const fallback = await readV1Stats({ dirs: new Map([['blkio', cfq]]), partitions: PARTITIONS });
    expect(fallback.blkio?.io_serviced_recursive).toEqual([{ op: 'Read', device: '/dev/sdb', major: 8n, minor: 16n, value: 1n }]);
  });

  it('parses huge and malformed values without throwing', async () => {
    const cg = await controller('memory', {
      'memory.stat': 'cache 99999999999999999999999\nrss notanumber\nmapped_file\n',
      'memory.usage_in_bytes': '18446744073709551615\n',
      'memory.limit_in_bytes': 'garbage\n',
    });
    const m = await readV1Stats({ dirs: new Map([['memory', cg]]) });
    expect(m.memory?.cache).toBe(U64_MAX);
    expect(m.memory?.rss).toBe(0n);
    expect(m.memory?.usage).toEqual({ usage: U64_MAX, limit: 0n, max: 0n, failcnt: 0n });
    const exact = decodeExact(V1_METRICS_TYPE_URL, encodeStats({ version: 1, metrics: m }).value);
    expect(exact.memory.usage.usage).toBe('18446744073709551615');
    expect(parseBlkioEntries('x\n1:2\n1:2 Read\n3:4 Read 5\n', devicesOf(undefined))).toEqual([{ op: 'Read', device: '', major: 3n, minor: 4n, value: 5n }]);
  });
});

/** A real v1 cgroup on this host: a child cgroup per controller with a process in it that does some work. */
describe.runIf(process.getuid?.() === 0)('cgroup v1 statistics of a real cgroup on this host', () => {
  it('reads CPU, memory, pids and blkio figures that reflect the work of the process in it', async (ctx) => {
    const hierarchy = await detectHierarchy('v1');
    if (!hierarchy || !['cpuacct', 'memory', 'pids'].every((c) => hierarchy.controllers.has(c))) {
      ctx.skip();
      return;
    }
    const name = `berth-test-${process.pid}-${Date.now()}`;
    const dirs = new Map<string, string>();
    for (const c of ['cpu', 'cpuacct', 'memory', 'pids', 'blkio']) {
      const mount = hierarchy.controllers.get(c);
      if (mount) dirs.set(c, join(mount.mountpoint, name));
    }
    // The child waits for its cgroup before working: it reads a line from stdin first.
    const child = spawn('sh', ['-c', 'read go; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; head -c 33554432 /dev/zero > /dev/shm/' + name + '; sleep 30'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      for (const d of new Set(dirs.values())) {
        await mkdir(d, { recursive: true });
        await writeFile(join(d, 'cgroup.procs'), String(child.pid));
      }
      await writeFile(join(dirs.get('pids')!, 'pids.max'), '64');
      const before = await readV1Stats({ dirs });
      child.stdin!.write('go\n');
      const deadline = Date.now() + 20_000;
      let after = before;
      while (Date.now() < deadline) {
        after = await readV1Stats({ dirs, partitions: await readFile('/proc/partitions', 'utf8') });
        if ((after.memory?.usage.usage ?? 0n) >= 32n << 20n) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(after.pids).toMatchObject({ limit: 64n });
      expect(after.pids!.current).toBeGreaterThanOrEqual(1n);
      expect(after.cpu!.usage.total).toBeGreaterThan(before.cpu!.usage.total);
      expect(after.cpu!.usage.per_cpu.length).toBeGreaterThan(0);
      expect(after.cpu!.usage.per_cpu.reduce((a, b) => a + b, 0n)).toBeGreaterThan(0n);
      // The 32 MiB written to tmpfs is charged to the cgroup (shmem counts as cache).
      expect(after.memory!.usage.usage).toBeGreaterThanOrEqual(32n << 20n);
      expect(after.memory!.cache + after.memory!.rss).toBeGreaterThanOrEqual(32n << 20n);
      expect(after.memory!.usage.limit).toBeGreaterThan(0n);
      expect(after.memory_oom_control).toBeDefined();
      if (dirs.has('blkio')) expect(after.blkio).toBeDefined();
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
      // The shell's own children (head, sleep) are in the cgroup too: kill whatever is left there.
      for (const d of new Set(dirs.values())) {
        const procs = await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => '');
        for (const pid of procs.split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      await rm(`/dev/shm/${name}`, { force: true });
      for (const d of new Set(dirs.values())) {
        // The cgroup empties once the killed process is reaped; retry briefly.
        for (let i = 0; i < 100 && existsSync(d); i++) {
          try {
            await rmdir(d);
          } catch {
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }
    }
  });
});
