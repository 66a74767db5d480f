// Child process of crash.test.ts: writes through the store until it is killed. Reports progress as JSON lines on
// stdout (synchronous on a pipe, so a reported step has happened).
import type { OpContext } from '@berth/core';
import { LocalContentStore } from '../local-content-store.js';
import { ENDLESS_REF, blobContent, pattern } from './pattern.js';

const ctx: OpContext = { namespace: 'crash' };
const report = (line: object) => process.stdout.write(JSON.stringify(line) + '\n');

export async function main(root: string, firstBlob = '0'): Promise<void> {
  const store = await LocalContentStore.open({ root });
  const endless = async () => {
    // Resumes what an earlier, killed child left: the pattern depends only on the position.
    const w = await store.writer(ctx, { ref: ENDLESS_REF });
    let offset = (await w.status()).offset;
    for (;;) {
      await w.write(pattern(offset, 64 * 1024));
      offset += 64 * 1024;
      report({ written: offset });
    }
  };
  const commits = async () => {
    for (let k = Number(firstBlob); ; k++) {
      const data = blobContent(k);
      const w = await store.writer(ctx, { ref: `crash/blob-${k}`, total: data.length });
      // Several writes per blob, so a kill can land mid-ingest as well as mid-commit.
      for (let at = 0; at < data.length; at += 16 * 1024) await w.write(data.subarray(at, at + 16 * 1024));
      await w.commit(data.length, '');
      report({ committed: w.digest(), k });
    }
  };
  await Promise.all([endless(), commits()]);
}
