// /v1/metrics of a real berthd: the exposition read by a real Prometheus text parser and checked by Debian's
// promtool, gRPC counters that move by exactly the calls made, per-plugin figures that match what was created, and
// scrapes bounded in time against third-party collectors that hang or hold the event loop.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceNames } from '@berth/api';
import { OCI_SPEC_TYPE_URL } from '@berth/core';
import { hasPromtool, parseExposition, promtoolCheck, sampleValue, type ParsedFamily } from '../src/testing-fixtures/prometheus.js';
import { unaryCall } from './grpc-raw.js';
import { expectOk, hasCtr, QUIET_GC, startBerthd, type Berthd } from './harness.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const NS = { 'containerd-namespace': 'metrics-test' };

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

/** A plugin package in `dir` contributing one collector (the body of `collect`), loaded through plugin_packages. */
function collectorPlugin(dir: string, id: string, collect: string): string {
  const pkg = join(dir, id);
  mkdirSync(join(pkg, 'node_modules', '@berth'), { recursive: true });
  symlinkSync(join(repo, 'packages/core'), join(pkg, 'node_modules', '@berth', 'core'));
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: `@example/berth-plugin-${id}`, version: '0.0.1', type: 'module', exports: './index.js' }));
  writeFileSync(
    join(pkg, 'index.js'),
    `import { definePlugin, metricsCollectorsPoint } from '@berth/core';
export default definePlugin({
  type: 'io.example.collector.v1', id: '${id}', version: '0.0.1', pluginApi: '^2.0.0',
  provides: metricsCollectorsPoint,
  init: () => { let calls = 0; return { collect: () => { calls++; ${collect} } }; },
});
`,
  );
  return pkg;
}

async function scrape(port: number): Promise<{ text: string; ms: number; status: number }> {
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/metrics`);
  const text = await res.text();
  return { text, ms: performance.now() - t0, status: res.status };
}

const version = (address: string) => unaryCall(address, ServiceNames.Version, 'Version', {});

describe.skipIf(!hasCtr())('/v1/metrics of berthd', () => {
  let work: string;
  let daemon: Berthd | undefined;
  let port: number;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-metrics-'));
    const hang = collectorPlugin(work, 'hang', 'return new Promise(() => {});');
    const block = collectorPlugin(
      work,
      'block',
      `const until = performance.now() + 400; while (performance.now() < until) {} return [{ name: 'example_block_calls_total', help: 'calls', type: 'counter', samples: [{ value: calls }] }];`,
    );
    const good = collectorPlugin(work, 'good', `return [{ name: 'example_good_calls_total', help: 'calls', type: 'counter', samples: [{ value: calls }] }];`);
    port = await freePort();
    daemon = await startBerthd({
      config: [
        `plugin_packages = ${JSON.stringify([hang, block, good])}`,
        '[metrics]',
        `address = "127.0.0.1:${port}"`,
        'collector_timeout_ms = 250',
        QUIET_GC,
      ].join('\n'),
      logLevel: 'warn',
    });
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  let families: Map<string, ParsedFamily>;
  let first: string;

  it('answers with text a Prometheus parser reads, with the families, types and labels documented', async () => {
    const { text, status } = await scrape(port);
    expect(status).toBe(200);
    first = text;
    families = parseExposition(text);
    const types: Record<string, ParsedFamily['type']> = {
      grpc_server_started_total: 'COUNTER',
      grpc_server_handled_total: 'COUNTER',
      grpc_server_msg_received_total: 'COUNTER',
      grpc_server_msg_sent_total: 'COUNTER',
      grpc_server_handling_seconds: 'HISTOGRAM',
      process_cpu_seconds_total: 'COUNTER',
      process_resident_memory_bytes: 'GAUGE',
      process_virtual_memory_bytes: 'GAUGE',
      process_open_fds: 'GAUGE',
      process_max_fds: 'GAUGE',
      process_start_time_seconds: 'GAUGE',
      nodejs_heap_size_used_bytes: 'GAUGE',
      nodejs_eventloop_lag_max_seconds: 'GAUGE',
      nodejs_eventloop_utilization_ratio: 'GAUGE',
      berth_build_info: 'GAUGE',
      berth_metrics_collector_skipped_total: 'COUNTER',
      berth_metadata_records: 'GAUGE',
      berth_containers: 'GAUGE',
      berth_images: 'GAUGE',
      berth_leases: 'GAUGE',
      berth_content_blobs: 'GAUGE',
      berth_content_blob_bytes: 'GAUGE',
      berth_snapshots: 'GAUGE',
      berth_tasks: 'GAUGE',
      berth_gc_runs_total: 'COUNTER',
      berth_gc_pause_seconds: 'HISTOGRAM',
      berth_events_published_total: 'COUNTER',
      berth_events_subscribers: 'GAUGE',
      berth_pulls_total: 'COUNTER',
      berth_pull_bytes_total: 'COUNTER',
      berth_pull_layer_unpack_seconds: 'HISTOGRAM',
      example_good_calls_total: 'COUNTER',
    };
    const missing = Object.keys(types).filter((name) => families.get(name)?.type !== types[name]);
    expect(missing, `families missing or of another type: ${missing.map((n) => `${n}=${families.get(n)?.type}`).join(', ')}`).toEqual([]);
    // Every method of every service is there from the start, each status code of handled too (as containerd).
    const versionLabels = { grpc_service: 'containerd.services.version.v1.Version', grpc_method: 'Version', grpc_type: 'unary' };
    expect(sampleValue(families, 'grpc_server_handled_total', { ...versionLabels, grpc_code: 'Unavailable' })).toBe(0);
    expect(sampleValue(families, 'grpc_server_started_total', { grpc_method: 'Subscribe', grpc_type: 'server_stream' })).toBeGreaterThanOrEqual(0);
    expect(sampleValue(families, 'grpc_server_started_total', { grpc_method: 'Write', grpc_type: 'bidi_stream' })).toBeGreaterThanOrEqual(0);
    expect(sampleValue(families, 'process_open_fds')).toBeGreaterThan(5);
    expect(sampleValue(families, 'process_start_time_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
  });

  it.skipIf(!hasPromtool())('passes promtool check metrics', () => {
    const { code, output } = promtoolCheck(first);
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('gives 404 for every other path and method', async () => {
    for (const path of ['/', '/metrics', '/v1/metric', '/v1/metrics/extra', '/v2/metrics']) {
      expect((await fetch(`http://127.0.0.1:${port}${path}`)).status, path).toBe(404);
    }
    expect((await fetch(`http://127.0.0.1:${port}/v1/metrics`, { method: 'POST' })).status).toBe(404);
  });

  it('moves the gRPC counters by exactly the calls made', async () => {
    const v = { grpc_service: 'containerd.services.version.v1.Version', grpc_method: 'Version', grpc_type: 'unary' };
    const g = { grpc_service: 'containerd.services.containers.v1.Containers', grpc_method: 'Get', grpc_type: 'unary' };
    const l = { grpc_service: 'containerd.services.content.v1.Content', grpc_method: 'List', grpc_type: 'server_stream' };
    const read = (f: Map<string, ParsedFamily>) => ({
      vStarted: sampleValue(f, 'grpc_server_started_total', v)!,
      vOk: sampleValue(f, 'grpc_server_handled_total', { ...v, grpc_code: 'OK' })!,
      vReceived: sampleValue(f, 'grpc_server_msg_received_total', v)!,
      vSent: sampleValue(f, 'grpc_server_msg_sent_total', v)!,
      vSeconds: sampleValue(f, 'grpc_server_handling_seconds', v)!,
      gNotFound: sampleValue(f, 'grpc_server_handled_total', { ...g, grpc_code: 'NotFound' })!,
      gSent: sampleValue(f, 'grpc_server_msg_sent_total', g)!,
      lStarted: sampleValue(f, 'grpc_server_started_total', l)!,
      lOk: sampleValue(f, 'grpc_server_handled_total', { ...l, grpc_code: 'OK' })!,
    });
    // The histogram's series fold into one in this parser: read its _count line for Version directly.
    const versionCount = (text: string) =>
      Number(/^grpc_server_handling_seconds_count\{[^}]*grpc_method="Version"[^}]*\} (\S+)$/m.exec(text)?.[1]);
    const before = await scrape(port);
    const b = read(parseExposition(before.text));
    for (let i = 0; i < 7; i++) expect((await version(daemon!.address)).error).toBeUndefined();
    for (let i = 0; i < 3; i++) expect((await unaryCall(daemon!.address, ServiceNames.Containers, 'Get', { id: `nope-${i}` }, NS)).error?.code).toBe(5);
    expectOk(await daemon!.ctr(['content', 'ls'], { namespace: 'metrics-test' }), 'ctr content ls');
    const after = await scrape(port);
    const a = read(parseExposition(after.text));
    expect(a.vStarted - b.vStarted).toBe(7);
    expect(a.vOk - b.vOk).toBe(7);
    expect(a.vReceived - b.vReceived).toBe(7);
    expect(a.vSent - b.vSent).toBe(7);
    expect(versionCount(after.text) - versionCount(before.text)).toBe(7);
    expect(a.gNotFound - b.gNotFound).toBe(3);
    expect(a.gSent - b.gSent).toBe(0);
    expect(a.lStarted - b.lStarted).toBe(1);
    expect(a.lOk - b.lOk).toBe(1);
  });

  it('reports per-plugin figures that match what was created', async () => {
    const ns = 'metrics-test';
    const blobs = ['first blob', 'second, longer blob', 'third'];
    for (const [i, data] of blobs.entries()) expectOk(await daemon!.ctr(['content', 'ingest', `ref-${i}`], { namespace: ns, input: data }), 'ctr content ingest');
    for (const id of ['l1', 'l2']) expect((await unaryCall(daemon!.address, ServiceNames.Leases, 'Create', { id }, NS)).error).toBeUndefined();
    const target = { media_type: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 10 };
    for (const name of ['example.com/a:1', 'example.com/b:1']) {
      expect((await unaryCall(daemon!.address, ServiceNames.Images, 'Create', { image: { name, target } }, NS)).error).toBeUndefined();
    }
    const spec = { type_url: OCI_SPEC_TYPE_URL, value: Buffer.from('{"ociVersion":"1.0.2"}') };
    for (const id of ['c1', 'c2', 'c3']) {
      const r = await unaryCall(daemon!.address, ServiceNames.Containers, 'Create', { container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec } }, NS);
      expect(r.error).toBeUndefined();
    }
    expectOk(await daemon!.ctr(['snapshots', 'prepare', 'k1', ''], { namespace: ns }), 'ctr snapshots prepare');
    const f = parseExposition((await scrape(port)).text);
    expect(sampleValue(f, 'berth_content_blobs', { namespace: ns })).toBe(3);
    expect(sampleValue(f, 'berth_content_blob_bytes', { namespace: ns })).toBe(blobs.reduce((n, b) => n + Buffer.byteLength(b), 0));
    expect(sampleValue(f, 'berth_leases', { namespace: ns })).toBe(2);
    expect(sampleValue(f, 'berth_images', { namespace: ns })).toBe(2);
    expect(sampleValue(f, 'berth_containers', { namespace: ns })).toBe(3);
    expect(sampleValue(f, 'berth_snapshots', { namespace: ns })).toBe(1);

    expect((await unaryCall(daemon!.address, ServiceNames.Containers, 'Delete', { id: 'c2' }, NS)).error).toBeUndefined();
    expect((await unaryCall(daemon!.address, ServiceNames.Leases, 'Delete', { id: 'l1' }, NS)).error).toBeUndefined();
    const g = parseExposition((await scrape(port)).text);
    expect(sampleValue(g, 'berth_containers', { namespace: ns })).toBe(2);
    expect(sampleValue(g, 'berth_leases', { namespace: ns })).toBe(1);
  });

  it('leaves a hanging collector and one that holds the loop out of scrapes, bounded in time, and counts them', async () => {
    const skipped = (f: Map<string, ParsedFamily>, collector: string, reason: string) =>
      sampleValue(f, 'berth_metrics_collector_skipped_total', { collector, reason }) ?? 0;
    const start = parseExposition((await scrape(port)).text);
    const times: number[] = [];
    let last = start;
    let maxLag = 0;
    for (let i = 0; i < 10; i++) {
      const s = await scrape(port);
      expect(s.status).toBe(200);
      times.push(s.ms);
      last = parseExposition(s.text);
      maxLag = Math.max(maxLag, sampleValue(last, 'nodejs_eventloop_lag_max_seconds')!);
    }
    // Every scrape answered: the budget is 250 ms, the blocking collector holds the loop 400 ms when it runs.
    for (const ms of times) expect(ms).toBeLessThan(5000);
    // The hanging one timed out once and is not called again while its call is pending.
    expect(skipped(last, 'collector hang', 'timeout')).toBe(1);
    expect(skipped(last, 'collector hang', 'busy') - skipped(start, 'collector hang', 'busy')).toBe(10);
    // The blocking one sits out 1, 2, 4, ... scrapes after each time it held the loop: a few of these 10 at most.
    const blocked = skipped(last, 'collector block', 'blocked') - skipped(start, 'collector block', 'blocked');
    const backoff = skipped(last, 'collector block', 'backoff') - skipped(start, 'collector block', 'backoff');
    expect(blocked + backoff).toBe(10);
    expect(blocked).toBeGreaterThanOrEqual(1);
    expect(blocked).toBeLessThanOrEqual(4);
    expect(last.has('example_block_calls_total')).toBe(false);
    // The loop delay the process metrics report saw the blocking collector.
    expect(maxLag).toBeGreaterThan(0.3);
    // The well-behaved collector is served every time.
    expect(sampleValue(last, 'example_good_calls_total')! - sampleValue(start, 'example_good_calls_total')!).toBe(10);
    expect((await version(daemon!.address)).error).toBeUndefined();
  });
});
