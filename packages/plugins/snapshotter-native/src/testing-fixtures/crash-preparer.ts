// Child process of crash.test.ts: prepares `victim` on the committed `base` (a copy of many files) and is SIGKILLed
// while the copy runs. Says `preparing` on stdout (synchronous on a pipe) just before it starts.
import { NativeSnapshotter } from '../native-snapshotter.js';

export async function main(root: string): Promise<void> {
  const sn = await NativeSnapshotter.open({ root });
  process.stdout.write('preparing\n');
  await sn.prepare({ namespace: 'crash' }, 'victim', 'base');
  process.stdout.write('prepared\n');
}
