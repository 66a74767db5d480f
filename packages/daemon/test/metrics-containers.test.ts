// /v1/metrics while 20 containers run: each running task has its CPU and memory series (metrics-cgroups), the
// runtime counts them, a scrape answers within a generous bound, Version calls made during scrapes are not slowed
// beyond a generous bound, and a deleted task's series are gone at the next scrape. Figures are printed.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceNames } from '@berth/api';
import { parseExposition, sampleValue, type ParsedFamily } from '../src/testing-fixtures/prometheus.js';
import { unaryCall } from './grpc-raw.js';
import { expectOk } from './harness.js';
import { eventually, startTaskFixture, taskTestsSkipReason, type TaskFixture } from './tasks-harness.js';

const COUNT = 20;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Container ids that have at least one sample in a family whose name starts with `prefix`. */
function idsWith(families: Map<string, ParsedFamily>, prefix: string, ns: string): Set<string> {
  const ids = new Set<string>();
  for (const [name, f] of families) {
    if (!name.startsWith(prefix)) continue;
    for (const m of f.metrics) if (m.labels?.namespace === ns && m.labels.container_id) ids.add(m.labels.container_id);
  }
  return ids;
}

describe.skipIf(taskTestsSkipReason() !== undefined)('/v1/metrics while 20 containers run', () => {
  let fx: TaskFixture;
  let port: number;
  const ids = Array.from({ length: COUNT }, (_, i) => `m${i}`);

  const scrape = async () => {
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/v1/metrics`);
    const text = await res.text();
    expect(res.status).toBe(200);
    return { families: parseExposition(text), ms: performance.now() - t0 };
  };

  beforeAll(async () => {
    port = await freePort();
    fx = await startTaskFixture('metrics', { config: `[metrics]\naddress = "127.0.0.1:${port}"` });
    for (const id of ids) {
      fx.ids.add(id);
      expectOk(await fx.run(['-d'], id, ['sleep', '1000']), `ctr run -d ${id}`);
    }
  }, 300_000);

  afterAll(async () => {
    await fx?.close();
  }, 120_000);

  it('has CPU and memory series for every running task, answered within a bound', async () => {
    const times: number[] = [];
    let families!: Map<string, ParsedFamily>;
    for (let i = 0; i < 5; i++) {
      const s = await scrape();
      times.push(s.ms);
      families = s.families;
    }
    console.log(`scrape with ${COUNT} containers: median ${median(times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms`);
    expect(Math.max(...times)).toBeLessThan(5000);
    const cpu = idsWith(families, 'container_cpu_', fx.ns);
    const memory = idsWith(families, 'container_memory_', fx.ns);
    expect([...cpu].sort()).toEqual([...ids].sort());
    expect([...memory].sort()).toEqual([...ids].sort());
    expect(sampleValue(families, 'berth_tasks', { namespace: fx.ns, state: 'running' })).toBe(COUNT);
    expect(sampleValue(families, 'berth_containers', { namespace: fx.ns })).toBe(COUNT);
    expect(sampleValue(families, 'berth_metrics_collector_skipped_total', { collector: 'collector cgroups', reason: 'timeout' }) ?? 0).toBe(0);
  });

  it('does not slow API calls made during scrapes beyond a generous bound', async () => {
    const call = async () => {
      const t0 = performance.now();
      expect((await unaryCall(fx.daemon.address, ServiceNames.Version, 'Version', {})).error).toBeUndefined();
      return performance.now() - t0;
    };
    const quiet: number[] = [];
    for (let i = 0; i < 40; i++) quiet.push(await call());
    let scraping = true;
    let scrapes = 0;
    const loop = (async () => {
      while (scraping) {
        await scrape();
        scrapes++;
      }
    })();
    const busy: number[] = [];
    try {
      for (let i = 0; i < 40; i++) busy.push(await call());
    } finally {
      scraping = false;
      await loop;
    }
    console.log(
      `Version latency with ${COUNT} containers: quiet median ${median(quiet).toFixed(1)} ms (max ${Math.max(...quiet).toFixed(1)}), during ${scrapes} back-to-back scrapes median ${median(busy).toFixed(1)} ms (max ${Math.max(...busy).toFixed(1)})`,
    );
    expect(scrapes).toBeGreaterThan(0);
    // Stall detection, not a performance target: a scrape that held the loop would show up as hundreds of ms.
    expect(median(busy)).toBeLessThan(median(quiet) + 250);
    expect(Math.max(...busy)).toBeLessThan(2000);
  });

  it("drops a task's series once the task is deleted", async () => {
    const gone = ids[0]!;
    expectOk(await fx.ctr(['tasks', 'kill', '-s', 'SIGKILL', gone]), 'ctr tasks kill');
    await eventually(`${gone} to stop`, async () => ((await fx.tasks()).find((t) => t.TASK === gone)?.STATUS === 'STOPPED' ? true : undefined));
    expectOk(await fx.ctr(['tasks', 'rm', gone]), 'ctr tasks rm');
    const { families } = await scrape();
    expect(idsWith(families, 'container_cpu_', fx.ns).has(gone)).toBe(false);
    expect(idsWith(families, 'container_memory_', fx.ns).has(gone)).toBe(false);
    expect(idsWith(families, 'container_cpu_', fx.ns).size).toBe(COUNT - 1);
    expect(sampleValue(families, 'berth_tasks', { namespace: fx.ns, state: 'running' })).toBe(COUNT - 1);
  });
});
