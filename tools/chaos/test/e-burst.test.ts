// Phase e: connection bursts on the gRPC and the ttrpc socket. containerd (Go, listen backlog = somaxconn) accepts
// all of 2,000 connects made 200 at a time; so must berthd, and it must still answer afterwards.
import { readFileSync } from 'node:fs';
import { StatusCode } from '@berth/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { budget } from '../src/budget.js';
import { burst, type BurstResult } from '../src/burst.js';
import { hasCtr, PhaseDaemon } from '../src/daemon.js';
import { RawTtrpc } from '../src/raw-ttrpc.js';
import { newRow, writeRow } from '../src/summary.js';

const somaxconn = (() => {
  try {
    return readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim();
  } catch {
    return 'unknown';
  }
})();

describe.skipIf(!hasCtr())('e: connection burst', () => {
  const row = newRow('e', 'connection burst');
  let phase: PhaseDaemon;
  const results = new Map<string, BurstResult>();

  beforeAll(async () => {
    phase = await PhaseDaemon.start();
    row.rssBeforeMiB = phase.memory()?.rssMiB;
    row.notes.push(`${budget.burstTotal} connects, ${budget.burstConcurrency} at a time; somaxconn ${somaxconn}`);
  });

  afterAll(async () => {
    for (const [socket, r] of results) {
      row.notes.push(`${socket}: ${r.connected} connected, refused ${JSON.stringify(r.refused)} in ${r.ms} ms`);
    }
    row.stallMs = phase?.worstStallMs();
    row.rssAfterMiB = phase?.memory()?.rssMiB;
    await new Promise((r) => setTimeout(r, 2000));
    row.rssIdleMiB = phase?.memory()?.rssMiB;
    row.hwmMiB = phase?.peakRssMiB();
    writeRow(inject('chaosResultsDir'), row);
    await phase?.dispose();
  });

  const check = (socket: string, r: BurstResult) => {
    results.set(socket, r);
    row.cases += budget.burstTotal;
    row.failures += budget.burstTotal - r.connected;
    expect(r.refused, `${socket}: ${budget.burstTotal - r.connected} of ${budget.burstTotal} connects failed`).toEqual({});
  };

  it('accepts every connect of a burst on the gRPC socket and answers afterwards', async () => {
    const r = await burst(phase.address, budget.burstTotal, budget.burstConcurrency);
    expect(await phase.responsive(), 'ctr version after the burst').toBe(true);
    check('gRPC', r);
  });

  it('accepts every connect of a burst on the ttrpc socket and answers afterwards', async () => {
    const r = await burst(phase.ttrpcAddress, budget.burstTotal, budget.burstConcurrency);
    const tt = await RawTtrpc.connect(phase.ttrpcAddress);
    const ans = await tt.frame(RawTtrpc.envelope('chaos.Nothing', 'Ping', Buffer.alloc(0)));
    tt.close();
    expect(ans.code, 'a ttrpc request after the burst is answered').toBe(StatusCode.UNIMPLEMENTED);
    check('ttrpc', r);
  });
});
