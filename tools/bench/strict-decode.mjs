#!/usr/bin/env node
// Benchmark: the cost of strict decoding (packages/api/src/strict-decode.ts) over protobufjs's own lenient decode,
// per request type, from the built @berth/api. Prints ns per decode for protobufjs alone (decode + toObject, what
// the codec did before), the strict check alone, and the codec's decode now (check + decode + toObject), with the
// overhead in percent. Not a test: nothing here asserts a time.
// Usage: node tools/bench/strict-decode.mjs [--ms 1000]   (after a build of packages/api)

const args = process.argv.slice(2);
const MS = Number(args[args.indexOf('--ms') + 1] || 1000);
const api = await import(new URL('../../packages/api/dist/index.js', import.meta.url).href);
const { checkEncoding, conversionOptions, findMessageType, messageCodec } = api;

const MiB = 1 << 20;
const cases = [
  ['1 MiB Content.Write', 'containerd.services.content.v1.WriteContentRequest', {
    action: 'WRITE', ref: 'default/1/layer-sha256:abc', offset: 3 * MiB, data: Buffer.alloc(MiB, 7),
  }],
  ['Content.Write STAT', 'containerd.services.content.v1.WriteContentRequest', {
    action: 'STAT', ref: 'default/1/layer-sha256:abc', total: 30 * MiB, expected: `sha256:${'a'.repeat(64)}`,
  }],
  ['Leases.Create', 'containerd.services.leases.v1.CreateRequest', {
    id: '942640046-l-ok', labels: { 'containerd.io/gc.expire': '2026-12-02T10:00:00Z' },
  }],
  ['Content.Info', 'containerd.services.content.v1.InfoRequest', { digest: `sha256:${'b'.repeat(64)}` }],
  ['Events.Forward (ttrpc)', 'containerd.services.events.ttrpc.v1.ForwardRequest', {
    envelope: {
      timestamp: { seconds: 1_764_583_200, nanos: 123_456_789 }, namespace: 'default', topic: '/tasks/exit',
      event: { type_url: 'containerd.events.TaskExit', value: Buffer.alloc(60, 1) },
    },
  }],
  ['Content.Update (10 labels)', 'containerd.services.content.v1.UpdateRequest', {
    info: {
      digest: `sha256:${'c'.repeat(64)}`, size: 12345, created_at: { seconds: 1 }, updated_at: { seconds: 2 },
      labels: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`containerd.io/gc.ref.content.l.${i}`, `sha256:${'d'.repeat(64)}`])),
    },
    update_mask: { paths: ['labels'] },
  }],
];

/** CPU time of this process (µs): less disturbed than wall time on a shared machine. */
const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** Best of 5 rounds of about MS/5 of CPU time each: the minimum is the least disturbed figure. */
function nsPerOp(fn) {
  for (let i = 0; i < 2000; i++) fn(); // warm up
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    let n = 0;
    const start = cpuMicros();
    let now = start;
    while (now - start < (MS * 1000) / 5) {
      for (let i = 0; i < 100; i++) fn();
      n += 100;
      now = cpuMicros();
    }
    best = Math.min(best, ((now - start) * 1e3) / n);
  }
  return best;
}

const rows = [['request', 'bytes', 'protobufjs ns', 'check ns', 'strict decode ns', 'overhead']];
for (const [label, name, obj] of cases) {
  const type = findMessageType(name);
  const bytes = messageCodec(name).encode(obj);
  const codec = messageCodec(name);
  const lenient = nsPerOp(() => type.toObject(type.decode(bytes), conversionOptions));
  const check = nsPerOp(() => checkEncoding(type, bytes));
  const strict = nsPerOp(() => codec.decode(bytes));
  rows.push([label, String(bytes.length), lenient.toFixed(0), check.toFixed(0), strict.toFixed(0), `${(((strict - lenient) / lenient) * 100).toFixed(1)}%`]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
