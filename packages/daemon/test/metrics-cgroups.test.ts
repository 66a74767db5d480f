// Per-task cgroup statistics against berthd with real runc shims (issue 12's "must work" lines): `ctr tasks metrics`
// prints CPU and memory figures read by berthd's cgroups monitor, and they move when the container works; the
// container's series are on /v1/metrics while its task exists and gone after `ctr tasks rm`; `berth tasks metrics`
// and `berth top --once` show the running containers, and `berth top` under a pty draws them and quits on q,
// giving the terminal back.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, ctrTable, expectOk } from './harness.js';
import { eventually, hasScript, startTaskFixture, taskTestsSkipReason, type TaskFixture } from './tasks-harness.js';

const skip = taskTestsSkipReason();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** ctr's METRIC/VALUE table as a map. */
function metricTable(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\s+(.+?)\s*$/.exec(line);
    if (m && m[1] !== 'METRIC' && m[1] !== 'ID') out.set(m[1]!, m[2]!);
  }
  return out;
}

/** berth top's table: columns are at least three spaces apart, cells hold single spaces ("1.2 MiB / unlimited"). */
function topRows(stdout: string): Record<string, string>[] {
  const [header, ...lines] = stdout.replace(/\n$/, '').split('\n');
  const names = header!.trim().split(/\s{2,}/);
  return lines.filter((l) => l.trim() !== '').map((l) => Object.fromEntries(l.trim().split(/\s{2,}/).map((cell, i) => [names[i] ?? `#${i}`, cell])));
}

describe.skipIf(skip !== undefined)(`task metrics from cgroups against berthd${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let fx: TaskFixture;
  let port: number;
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const metricsOf = async (id: string) => metricTable(expectOk(await fx.ctr(['tasks', 'metrics', id]), `ctr tasks metrics ${id}`).stdout);

  beforeAll(async () => {
    port = await freePort();
    fx = await startTaskFixture('cgm', { config: `[metrics]\naddress = "127.0.0.1:${port}"` });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('lists the cgroups monitor as a loaded plugin', async () => {
    const plugins = ctrTable(expectOk(await fx.ctr(['plugins', 'ls']), 'ctr plugins ls').stdout);
    expect(plugins.find((p) => p.TYPE === 'io.containerd.monitor.v1' && p.ID === 'cgroups')?.STATUS).toBe('ok');
  });

  it('ctr tasks metrics prints CPU and memory that rise when the container burns CPU and fills memory', async () => {
    // One container spins, the other waits for a signal file, then writes 48 MiB into its /dev/shm tmpfs.
    expectOk(await fx.run(['-d'], 'busy', ['/bin/sh', '-c', 'while :; do :; done']), 'ctr run -d busy');
    expectOk(await fx.run(['-d'], 'mem', ['/bin/sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.1; done; dd if=/dev/zero of=/dev/shm/x bs=1M count=48; sleep 1000']), 'ctr run -d mem');

    const first = await metricsOf('busy');
    const usage0 = Number(first.get('cpuacct.usage'));
    expect(first.get('memory.usage_in_bytes')).toMatch(/^[1-9]\d*$/);
    expect(first.get('memory.limit_in_bytes')).toMatch(/^\d+$/);
    expect(first.get('cpuacct.usage_percpu')).toMatch(/^\[\d+( \d+)*\]$/);
    expect(Number(first.get('pids.current'))).toBeGreaterThanOrEqual(1);
    // The busy loop uses about a CPU; over a second and more it must have used well over 100 ms.
    const usage1 = await eventually('the busy loop to use CPU time', async () => {
      const u = Number((await metricsOf('busy')).get('cpuacct.usage'));
      return u - usage0 > 100_000_000 ? u : undefined;
    });
    expect(usage1).toBeGreaterThan(usage0);

    const before = Number((await metricsOf('mem')).get('memory.usage_in_bytes'));
    expectOk(await fx.ctr(['tasks', 'exec', '--fifo-dir', fx.fifoDir, '--exec-id', 'go', 'mem', '/bin/touch', '/tmp/go']), 'signal mem');
    const after = await eventually('memory usage to rise by the 48 MiB written', async () => {
      const u = Number((await metricsOf('mem')).get('memory.usage_in_bytes'));
      return u - before >= 40 * 1024 * 1024 ? u : undefined;
    }, 30_000);
    expect(after - before).toBeGreaterThanOrEqual(40 * 1024 * 1024);

    // --format json: the whole io.containerd.cgroups.v1.Metrics, as Go's JSON of the struct.
    const json = JSON.parse(expectOk(await fx.ctr(['tasks', 'metrics', '--format', 'json', 'mem']), 'ctr tasks metrics --format json').stdout) as {
      memory?: { usage?: { usage?: number }; cache?: number };
      cpu?: { usage?: { total?: number } };
      pids?: { current?: number };
    };
    expect(json.memory?.usage?.usage).toBeGreaterThanOrEqual(40 * 1024 * 1024);
    expect(json.memory?.cache).toBeGreaterThanOrEqual(40 * 1024 * 1024);
    expect(json.cpu?.usage?.total).toBeGreaterThan(0);
    expect(json.pids?.current).toBeGreaterThanOrEqual(1);

    // berth's own command reads the same statistics.
    const berth = expectOk(await fx.daemon.berth(['--namespace', fx.ns, 'tasks', 'metrics', 'mem']), 'berth tasks metrics');
    expect(Number(metricTable(berth.stdout).get('memory.usage_in_bytes'))).toBeGreaterThanOrEqual(40 * 1024 * 1024);
    const berthJson = JSON.parse(expectOk(await fx.daemon.berth(['--namespace', fx.ns, '--format', 'json', 'tasks', 'metrics', 'busy'])).stdout) as { cpu?: { usage?: { total?: number } } };
    expect(berthJson.cpu?.usage?.total).toBeGreaterThan(usage0);
  });

  it("/v1/metrics has each running task's CPU and memory series, gone once the task is deleted", async () => {
    const text = await scrape();
    for (const id of ['busy', 'mem']) {
      const labels = `container_id="${id}",namespace="${fx.ns}",runtime="io.containerd.runc.v2"`;
      expect(text).toMatch(new RegExp(`^container_cpu_total_nanoseconds\\{${labels}\\} [1-9]`, 'm'));
      expect(text).toMatch(new RegExp(`^container_memory_usage_usage_bytes\\{${labels}\\} [1-9]`, 'm'));
      expect(text).toMatch(new RegExp(`^container_pids_current\\{${labels}\\} [1-9]`, 'm'));
    }
    expect(text).toContain('# TYPE container_cpu_total_nanoseconds gauge');

    expectOk(await fx.ctr(['tasks', 'kill', '-s', 'SIGKILL', 'busy']), 'ctr tasks kill busy');
    await eventually('busy to stop', async () => ((await fx.tasks()).find((t) => t.TASK === 'busy')?.STATUS === 'STOPPED' ? true : undefined));
    expectOk(await fx.ctr(['tasks', 'rm', 'busy']), 'ctr tasks rm busy');
    const later = await scrape();
    expect(later).not.toContain('container_id="busy"');
    expect(later).toMatch(new RegExp(`^container_cpu_total_nanoseconds\\{container_id="mem",`, 'm'));
    // Metrics of a container without a task: NotFound, as containerd says it.
    const none = await fx.ctr(['tasks', 'metrics', 'busy']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/not found/);
  });

  it('berth top --once lists the running containers with their figures', async () => {
    const r = expectOk(await fx.daemon.berth(['--namespace', fx.ns, 'top', '--once', '--interval', '0.5']), 'berth top --once');
    const rows = topRows(r.stdout);
    expect(Object.keys(rows[0] ?? {})).toEqual(['CONTAINER', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS', 'READ/s', 'WRITE/s']);
    expect(rows.map((row) => row.CONTAINER)).toEqual(['mem']);
    expect(rows[0]!['CPU %']).toMatch(/^\d+\.\d\d%$/);
    expect(rows[0]!['MEM USAGE / LIMIT']).toMatch(/^\d+\.\d (B|KiB|MiB|GiB) \/ /);
    const json = JSON.parse(expectOk(await fx.daemon.berth(['--namespace', fx.ns, '--format', 'json', 'top', '--once', '--interval', '0.3'])).stdout) as {
      id: string;
      memoryBytes: number;
      pids: number;
      cpuPercent: number | null;
    }[];
    expect(json.map((j) => j.id)).toEqual(['mem']);
    expect(json[0]!.memoryBytes).toBeGreaterThan(0);
    expect(json[0]!.pids).toBeGreaterThanOrEqual(1);
    expect(typeof json[0]!.cpuPercent).toBe('number');
  });

  it.skipIf(!hasScript())('berth top under a pty draws the running containers, quits on q with exit 0 and restores the terminal', async () => {
    const command = [process.execPath, CLI_MAIN, '--address', fx.daemon.address, '--namespace', fx.ns, 'top', '--interval', '0.3']
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    const child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      // Two frames: the first has no rates yet, the second does.
      await eventually('berth top to draw the container twice', () => ((out.match(/\nmem\s+\d+\.\d\d%/g) ?? []).length >= 1 && (out.match(/berth top - /g) ?? []).length >= 2 ? true : undefined), 20_000);
      expect(out).toContain('\x1b[?1049h');
      expect(out).toContain('\x1b[?25l');
      child.stdin.write('m');
      await eventually('the sort to change', () => (out.includes('sort: mem') ? true : undefined));
      child.stdin.write('q');
      expect(await exited).toBe(0);
      // The terminal is given back: cursor shown, alternate screen left (after the last frame).
      const tail = out.slice(out.lastIndexOf('berth top - '));
      expect(tail).toContain('\x1b[?25h\x1b[?1049l');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe.skipIf(skip !== undefined)(`task metrics without the cgroups monitor${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let fx: TaskFixture;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    fx = await startTaskFixture('cgm-off', { config: `disabled_plugins = ["io.containerd.monitor.v1.cgroups"]\n[metrics]\naddress = "127.0.0.1:${port}"` });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("ctr tasks metrics still answers with the shim's stats, and /v1/metrics has no per-container series", async () => {
    const plugins = ctrTable(expectOk(await fx.ctr(['plugins', 'ls']), 'ctr plugins ls').stdout);
    expect(plugins.some((p) => p.TYPE === 'io.containerd.monitor.v1')).toBe(false);
    expectOk(await fx.run(['-d'], 'plain', ['sleep', '1000']), 'ctr run -d plain');
    const table = metricTable(expectOk(await fx.ctr(['tasks', 'metrics', 'plain']), 'ctr tasks metrics').stdout);
    expect(table.get('memory.usage_in_bytes')).toMatch(/^[1-9]\d*$/);
    expect(Number(table.get('pids.current'))).toBeGreaterThanOrEqual(1);
    const text = await (await fetch(`http://127.0.0.1:${port}/v1/metrics`)).text();
    expect(text).not.toContain('container_id="plain"');
  });
});
