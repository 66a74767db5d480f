// The child of crash.test.ts: prepares, fills, commits and removes snapshots through the BUILT snapshotter
// (dist/) until it is SIGKILLed, reporting each acknowledged step on stdout as one JSON line.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '@berth/core';
import { OverlaySnapshotter } from '../../dist/overlay-snapshotter.js';

const [root, first] = process.argv.slice(2);
const ctx = { namespace: 'crash' };
const s = await OverlaySnapshotter.open({ root, log: createLogger({ level: 'error' }), mountOptions: [] });
const say = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
const upper = (mounts) => (mounts[0].type === 'bind' ? mounts[0].source : mounts[0].options.find((o) => o.startsWith('upperdir=')).slice(9));

let base = '';
try {
  await s.stat(ctx, 'base');
  base = 'base';
} catch {
  await s.prepare(ctx, 'base-active', '');
  await s.commit(ctx, 'base', 'base-active');
  base = 'base';
}
for (let i = Number(first); ; i++) {
  const mounts = await s.prepare(ctx, `k${i}`, i % 2 ? base : '');
  const dir = join(upper(mounts), 'd');
  mkdirSync(dir);
  for (let j = 0; j < 100; j++) writeFileSync(join(dir, `f${j}`), `${i}/${j}`);
  await s.commit(ctx, `c${i}`, `k${i}`);
  say({ committed: `c${i}` });
  if (i - Number(first) >= 2) {
    say({ removing: `c${i - 2}` });
    await s.remove(ctx, `c${i - 2}`);
  }
}
