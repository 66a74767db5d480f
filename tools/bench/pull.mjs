#!/usr/bin/env node
// Benchmark: @berth/images' pull of the project's `big` (~250 MiB in 3 gzip layers) and `many` (~20,000 files in 4
// gzip layers) test images from Debian's docker-registry on loopback, in-process on the real plugins (content-local,
// metadata-lmdb, the overlayfs snapshotter, the walking differ), cold every round (a fresh root). Two ways:
//   sequential: fetch everything, then unpack (what ctr images pull does: content fetch, then Unpack);
//   pipelined:  one pull that applies each layer as soon as its own bytes are in, while the next ones download
//               (3 downloads at once, the default);
//   in-order:   the same with one download at a time, so layer N is complete (and applied) while N+1 downloads.
// Prints median seconds [min-max] per image and way, and each way's ratio to sequential. Not a test.
// Usage (as root, after a build): node tools/bench/pull.mjs [--rounds 3] [--dir /var/tmp] [--only big|many]
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pushLayout, startRegistry } from './lib/registry.mjs';

const repo = new URL('../..', import.meta.url).pathname;
const load = (p) => import(join(repo, p));
const core = await load('packages/core/dist/index.js');
const { createTestHost } = await load('packages/core/dist/testing/index.js');
const { createResolver } = await load('packages/registry/dist/index.js');
const { pull } = await load('packages/images/dist/index.js');
const plugin = async (name) => (await load(`packages/plugins/${name}/dist/index.js`)).default;
const { cachedImage } = await load('tools/images/index.mjs');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const ROUNDS = Number(opt('rounds', 3));
const DIR = opt('dir', '/var/tmp');
const ONLY = opt('only', '');

if (process.getuid?.() !== 0) throw new Error('run as root (the overlayfs snapshotter and the applier need it)');

const plugins = [
  await plugin('content-local'),
  await plugin('metadata-lmdb'),
  await plugin('snapshotter-overlay'),
  await plugin('differ-walking'),
];

async function once(ref, resolver, mode) {
  const dir = mkdtempSync(join(DIR, 'berth-bench-pull-'));
  const t = await createTestHost({ plugins, dir });
  try {
    const h = t.host;
    const services = {
      content: h.get(core.contentStoreToken),
      images: h.get(core.imagesToken),
      leases: h.get(core.leasesToken),
      snapshotters: h.get(core.snapshottersToken),
      applier: h.get(core.applierToken),
    };
    const ctx = { namespace: 'bench' };
    const started = performance.now();
    if (mode === 'sequential') {
      await pull(services, ctx, { ref, resolver, unpack: false });
      await pull(services, ctx, { ref, resolver, snapshotter: 'overlayfs' });
    } else {
      await pull(services, ctx, { ref, resolver, snapshotter: 'overlayfs', ...(mode === 'in-order' ? { concurrency: 1 } : {}) });
    }
    return (performance.now() - started) / 1000;
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `${median(xs).toFixed(2)} s [${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}]`;

const registry = await startRegistry(DIR);
const resolver = createResolver({ credentials: async () => undefined });
try {
  for (const name of ['big', 'many'].filter((n) => !ONLY || n === ONLY)) {
    const image = await cachedImage(name);
    const ref = await pushLayout(registry, image.dir, `bench/${name}`, 'latest');
    const modes = ['sequential', 'pipelined', 'in-order'];
    const times = Object.fromEntries(modes.map((m) => [m, []]));
    for (let r = 0; r < ROUNDS; r++) {
      // rotate which way goes first
      for (let i = 0; i < modes.length; i++) {
        const mode = modes[(i + r) % modes.length];
        times[mode].push(await once(ref, resolver, mode));
      }
    }
    const base = median(times.sequential);
    console.log(`${name}: ${modes.map((m) => `${m} ${fmt(times[m])}${m === 'sequential' ? '' : ` (x${(median(times[m]) / base).toFixed(2)})`}`).join(', ')}`);
  }
} finally {
  resolver.close();
  await registry.stop();
}
