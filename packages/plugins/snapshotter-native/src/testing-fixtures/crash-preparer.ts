// Child process of crash.test.ts, SIGKILLed by the test part way through one step on a snapshotter at `root`:
// - `prepare`: prepares `victim` on the committed `base` (a copy of many files);
// - `apply`: prepares `work` without a parent, writes `count` files into it (as an Apply would), then commits it
//   as `done`;
// - `remove`: removes the active snapshot `big` (a tree of many files).
// Says what it starts (`preparing`, `applying`, `committing`, `removing`) and ends (`prepared`, `committed`,
// `removed`) on stdout, synchronously (a pipe), so that the test knows where the kill landed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NativeSnapshotter } from '../native-snapshotter.js';

const ctx = { namespace: 'crash' };
const say = (word: string) => process.stdout.write(`${word}\n`);

export async function main(root: string, step: string, count = '0'): Promise<void> {
  const sn = await NativeSnapshotter.open({ root });
  if (step === 'prepare') {
    say('preparing');
    await sn.prepare(ctx, 'victim', 'base');
    say('prepared');
  } else if (step === 'apply') {
    const dir = (await sn.prepare(ctx, 'work', ''))[0]!.source;
    say('applying');
    for (let i = 0; i < Number(count); i++) writeFileSync(join(dir, `f${i}`), `file ${i}\n`.repeat(40));
    say('committing');
    await sn.commit(ctx, 'done', 'work');
    say('committed');
  } else if (step === 'remove') {
    say('removing');
    await sn.remove(ctx, 'big');
    say('removed');
  } else {
    throw new Error(`unknown step ${step}`);
  }
}
