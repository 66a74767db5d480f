#!/usr/bin/env node
// Containers metadata (issue 10's Measure; docs/performance.md). Two parts:
//
// 1. berthd against a private containerd in the same run: --count containers (default 2,000) created in each
//    through the Containers gRPC API (16 at a time, the same requests to both: labels, a spec of containerd's
//    default size, a JSON extension), then `ctr containers ls`, `ctr containers ls` with a label filter matching 1%
//    of them, and `ctr containers info` of one, --rounds times each (interleaved, the first daemon alternating):
//    median ms [min-max] and the ratio berthd/containerd (target: no slower than containerd, <= 1.00).
// 2. berthd alone (containerd has no extension queries): a schema with an indexed path (`team`) registered through
//    berth's Schemas service, a fixed set of --matching containers (default 100) whose extension has
//    team=payments, and containers that do not match added until there are 1,000 / 10,000 / 100,000 (--sizes):
//    at each size the query `extensions."acme.io/ownership".team==payments` through Containers.List (gRPC) and
//    through `ctr containers ls`, and a label filter matching the same set (answered by a scan) for comparison;
//    every answer is checked to be exactly the matching set. Target: the extension query flat across sizes.
//
//   node tools/bench/containers.mjs [--count 2000] [--rounds 7] [--sizes 1000,10000,100000] [--matching 100]
//                                   [--only compare|query] [--berthd-cpu-prof DIR]
//
// `--berthd-cpu-prof DIR` writes each berthd's --cpu-prof profile there when it stops.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireDaemons, rssKiB, startBerthd, startContainerd, stopDaemon } from './lib/daemons.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const COUNT = Number(arg('count', '2000'));
const ROUNDS = Number(arg('rounds', '7'));
const SIZES = arg('sizes', '1000,10000,100000').split(',').map(Number);
const MATCHING = Number(arg('matching', '100'));
const ONLY = arg('only', '');
const CPU_PROF = arg('berthd-cpu-prof', '');
const berthdOptions = { nodeArgs: CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : [] };
requireDaemons();
const { BerthClient } = await import(new URL('../../packages/client/dist/index.js', import.meta.url).href);
const { ServiceNames } = await import(new URL('../../packages/api/dist/index.js', import.meta.url).href);

const NS = 'bench';
const EXT = 'acme.io/ownership';
const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (ns) => Number(ns) / 1e6;
const fmt = (xs) => `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}]`;

/** A spec the size of the one `ctr run` / the Go client's WithNewSpec write for a plain container (about 3 KB). */
function specJson(id) {
  const caps = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];
  return JSON.stringify({
    ociVersion: '1.0.2-dev',
    process: { user: { uid: 0, gid: 0 }, args: ['/bin/sh'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/', capabilities: { bounding: caps, effective: caps, permitted: caps }, rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true },
    root: { path: 'rootfs' },
    mounts: ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/run'].map((d) => ({ destination: d, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'nodev'] })),
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      cgroupsPath: `/${NS}/${id}`,
      namespaces: ['pid', 'ipc', 'uts', 'mount', 'network'].map((type) => ({ type })),
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  });
}

/** The Create request of container `id`: labels, spec, and the JSON extension (team as given). */
function createRequest(id, team, labels) {
  return {
    container: {
      id,
      labels,
      image: '',
      runtime: { name: 'io.containerd.runc.v2' },
      spec: { type_url: SPEC_TYPE_URL, value: Buffer.from(specJson(id)) },
      snapshotter: '',
      snapshot_key: '',
      extensions: { [EXT]: { type_url: EXT, value: Buffer.from(JSON.stringify({ team, tier: 2, oncall: [`${team}@example.com`] })) } },
    },
  };
}

/** Creates `count` containers, request `i` made by `make(i)` when it is sent, 16 at a time; returns the seconds. */
async function createAll(client, count, make) {
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < count) await client.containers.Create(make(next++));
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return ms(process.hrtime.bigint() - t0) / 1000;
}

/** Wall ms of one ctr command to its exit; its stdout is counted (lines) and checked by `check`. */
function timedCtr(sock, args, check) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/ctr', ['--address', sock, '-n', NS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const t = ms(process.hrtime.bigint() - t0);
      if (code !== 0) return reject(new Error(`ctr ${args.join(' ')}: exit ${code}: ${err}`));
      try {
        check?.(out);
      } catch (e) {
        return reject(e);
      }
      resolve(t);
    });
  });
}

const rowsOf = (out) => out.split('\n').filter((l) => l.trim() !== '').length - 1;
const expectRows = (n) => (out) => {
  if (rowsOf(out) !== n) throw new Error(`expected ${n} rows, got ${rowsOf(out)}`);
};

const dir = await mkdtemp(join(tmpdir(), 'berth-bench-containers-'));
const live = [];
try {
  if (ONLY !== 'query') await compare();
  if (ONLY !== 'compare') await query();
} finally {
  for (const d of live) await stopDaemon(d);
  await rm(dir, { recursive: true, force: true });
}

async function compare() {
  const daemons = [await startBerthd(join(dir, 'berthd'), berthdOptions), await startContainerd(join(dir, 'containerd'))];
  live.push(...daemons);
  const requests = Array.from({ length: COUNT }, (_, i) => {
    const id = `c-${String(i).padStart(6, '0')}`;
    return createRequest(id, i % 100 === 0 ? 'payments' : `team-${i % 97}`, { 'bench.group': `g${i % 10}`, ...(i % 100 === 0 ? { 'bench.match': 'yes' } : {}) });
  });
  const matching = requests.filter((r) => r.container.labels['bench.match'] === 'yes').length;
  const created = {};
  for (const d of daemons) {
    const client = new BerthClient({ address: d.sock, namespace: NS, timeoutMs: 60_000 });
    try {
      created[d.name] = await createAll(client, requests.length, (i) => requests[i]);
    } finally {
      client.close();
    }
  }
  const times = { berthd: { ls: [], filter: [], info: [] }, containerd: { ls: [], filter: [], info: [] } };
  const infoId = requests[Math.floor(COUNT / 2)].container.id;
  for (let round = 0; round < ROUNDS; round++) {
    for (const d of round % 2 === 0 ? daemons : [...daemons].reverse()) {
      times[d.name].ls.push(await timedCtr(d.sock, ['containers', 'ls'], expectRows(COUNT)));
      times[d.name].filter.push(await timedCtr(d.sock, ['containers', 'ls', 'labels."bench.match"==yes'], expectRows(matching)));
      times[d.name].info.push(await timedCtr(d.sock, ['containers', 'info', infoId], (out) => {
        if (JSON.parse(out).ID !== infoId) throw new Error('info of the wrong container');
      }));
    }
  }
  const rss = Object.fromEntries(daemons.map((d) => [d.name, rssKiB(d.child.pid) / 1024]));
  const [b, c] = [times.berthd, times.containerd];
  console.log(`containers: ${COUNT} in each daemon, ctr wall times, medians of ${ROUNDS} [min-max] ms`);
  console.log(`${'what'.padEnd(52)} ${'containerd'.padStart(22)} ${'berthd'.padStart(22)} ${'ratio'.padStart(7)}`);
  const line = (what, cs, bs) => console.log(`${what.padEnd(52)} ${fmt(cs).padStart(22)} ${fmt(bs).padStart(22)} ${(median(bs) / median(cs)).toFixed(2).padStart(7)}`);
  line(`ctr containers ls (${COUNT} rows)`, c.ls, b.ls);
  line(`ctr containers ls 'labels."bench.match"==yes' (${matching})`, c.filter, b.filter);
  line('ctr containers info', c.info, b.info);
  console.log(`${`create ${COUNT} through gRPC, 16 at a time (s)`.padEnd(52)} ${created.containerd.toFixed(2).padStart(22)} ${created.berthd.toFixed(2).padStart(22)} ${(created.berthd / created.containerd).toFixed(2).padStart(7)}`);
  console.log(`${'RSS after (MiB)'.padEnd(52)} ${rss.containerd.toFixed(1).padStart(22)} ${rss.berthd.toFixed(1).padStart(22)} ${(rss.berthd / rss.containerd).toFixed(2).padStart(7)}`);
  for (const d of daemons) await stopDaemon(d);
  live.length = 0;
}

async function query() {
  const d = await startBerthd(join(dir, 'berthd-query'), berthdOptions);
  live.push(d);
  const client = new BerthClient({ address: d.sock, namespace: NS, timeoutMs: 120_000 });
  try {
    const schemas = client.service(ServiceNames.ExtensionSchemas);
    const schema = { type: 'object', required: ['team'], properties: { team: { type: 'string' }, tier: { type: 'integer' }, oncall: { type: 'array', items: { type: 'string' } } } };
    try {
      await schemas.Register({ name: EXT, schema: JSON.stringify(schema), indexed_paths: ['team'], force: false });
    } catch (err) {
      console.log(`extension queries: skipped, berthd could not register a schema (${err.message})`);
      return;
    }
    const filter = `extensions."${EXT}".team==payments`;
    const labelFilter = 'labels.team==payments';
    const matchIds = Array.from({ length: MATCHING }, (_, i) => `m-${String(i).padStart(6, '0')}`);
    let createS = await createAll(client, MATCHING, (i) => createRequest(matchIds[i], 'payments', { team: 'payments' }));
    let made = 0;
    const results = [];
    for (const size of SIZES) {
      const base = made;
      const more = Math.max(0, size - MATCHING - made);
      createS += await createAll(client, more, (i) => {
        const n = base + i;
        const team = `team-${n % 97}`;
        return createRequest(`n-${String(n).padStart(7, '0')}`, team, { team });
      });
      made += more;
      const expected = matchIds.join(',');
      const check = (containers) => {
        const ids = containers.map((c) => c.id).sort().join(',');
        if (ids !== expected) throw new Error(`the query at ${size} returned ${containers.length} containers, not the ${MATCHING} matching`);
      };
      const grpc = [];
      const grpcLabels = [];
      const ctrTimes = [];
      for (let round = 0; round < ROUNDS; round++) {
        let t0 = process.hrtime.bigint();
        check((await client.containers.List({ filters: [filter] })).containers);
        grpc.push(ms(process.hrtime.bigint() - t0));
        t0 = process.hrtime.bigint();
        check((await client.containers.List({ filters: [labelFilter] })).containers);
        grpcLabels.push(ms(process.hrtime.bigint() - t0));
        ctrTimes.push(await timedCtr(d.sock, ['containers', 'ls', filter], expectRows(MATCHING)));
      }
      results.push({ size, grpc, grpcLabels, ctrTimes, createS, rss: rssKiB(d.child.pid) / 1024 });
      createS = 0;
    }
    console.log(`\nextension query, ${MATCHING} matching containers, medians of ${ROUNDS} [min-max] ms (berthd only)`);
    console.log(`${'containers'.padStart(10)} ${'List ext. query'.padStart(22)} ${'ctr ls ext. query'.padStart(22)} ${'List label filter'.padStart(22)} ${'RSS MiB'.padStart(8)}`);
    for (const r of results) {
      console.log(`${String(r.size).padStart(10)} ${fmt(r.grpc).padStart(22)} ${fmt(r.ctrTimes).padStart(22)} ${fmt(r.grpcLabels).padStart(22)} ${r.rss.toFixed(0).padStart(8)}`);
    }
    const first = median(results[0].grpc);
    const last = median(results[results.length - 1].grpc);
    console.log(`extension query ${SIZES[SIZES.length - 1]} vs ${SIZES[0]} containers: ${(last / first).toFixed(2)}x (flat is 1.00); label filter: ${(median(results[results.length - 1].grpcLabels) / median(results[0].grpcLabels)).toFixed(2)}x`);
    console.log(`creates: ${results.map((r) => `${r.createS.toFixed(1)} s`).join(', ')} for each step`);
  } finally {
    client.close();
  }
}
