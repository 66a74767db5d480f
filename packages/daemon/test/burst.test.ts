// Connection bursts (issue 6, defect 5): 2,000 connects made 200 at a time to each socket berthd serves must all be
// accepted. With Node's default listen backlog (511) hundreds were refused with EAGAIN; containerd refused none.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasRoot, startBerthd, type Berthd } from './harness.js';

const TOTAL = 2000;
const AT_ONCE = 200;

/** Connects to a unix socket and closes at once; resolves with the error code, or 'ok'. */
function connectOnce(path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (outcome: string) => {
      s.destroy();
      resolve(outcome);
    };
    s.once('connect', () => done('ok'));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    s.setTimeout(30_000, () => done('timeout'));
  });
}

/** `TOTAL` connects, `AT_ONCE` in flight at a time (each batch started together): outcome -> count. */
async function burst(path: string): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  for (let done = 0; done < TOTAL; done += AT_ONCE) {
    const batch = await Promise.all(Array.from({ length: AT_ONCE }, () => connectOnce(path)));
    for (const o of batch) outcomes[o] = (outcomes[o] ?? 0) + 1;
  }
  return outcomes;
}

describe.skipIf(!hasRoot())('connection bursts', () => {
  let daemon: Berthd;
  beforeAll(async () => {
    daemon = await startBerthd({ config: '[metrics]\naddress = "127.0.0.1:0"' });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it(`accepts ${TOTAL} connects made ${AT_ONCE} at a time on the gRPC socket`, async () => {
    expect(await burst(daemon.address)).toEqual({ ok: TOTAL });
    // Still serving afterwards.
    expect((await daemon.ctr(['version'])).code).toBe(0);
  });

  it(`accepts ${TOTAL} connects made ${AT_ONCE} at a time on the ttrpc socket`, async () => {
    expect(await burst(`${daemon.address}.ttrpc`)).toEqual({ ok: TOTAL });
  });
});
