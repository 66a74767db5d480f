// Phase f: berthd's resident memory (VmRSS/VmHWM from /proc) idle, after 1,000 namespaces, and with 200 ttrpc
// connections each holding an unfinished 3 MiB frame. The figures go to the summary (every phase also reports its
// daemon's RSS before and after); the check is that the frames' memory is given back once their connections close.
import { createConnection, type Socket } from 'node:net';
import { encodeFrameHeader, FrameType, ServiceNames } from '@berth/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasCtr, PhaseDaemon } from '../src/daemon.js';
import { RawGrpc } from '../src/raw-grpc.js';
import { newRow, writeRow } from '../src/summary.js';

const MiB = 1 << 20;
const NAMESPACES = 1000;
const CONNECTIONS = 200;
const FRAME = 3 * MiB;
/** Memory still held after the connections closed and the daemon idled, above what it held before them. */
const RETAINED_BOUND_MIB = 64;
const IDLE_MS = 3000;
/** How long the test waits for the daemon to read what it will of the unfinished frames. */
const FILL_WAIT_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasCtr())('f: memory', () => {
  const row = newRow('f', 'memory');
  let phase: PhaseDaemon;
  const rss = () => phase.memory()?.rssMiB ?? NaN;
  let beforeFrames = 0;
  let afterClose = 0;

  beforeAll(async () => {
    phase = await PhaseDaemon.start({ probe: false });
    row.rssBeforeMiB = rss();
    await sleep(IDLE_MS);
    const idle = rss();
    row.notes.push(`idle after boot: ${idle} MiB`);

    const g = new RawGrpc(phase.address, { namespace: null, timeoutMs: 30_000 });
    try {
      for (let i = 0; i < NAMESPACES; i += 20) {
        await Promise.all(Array.from({ length: 20 }, (_, j) => g.call(ServiceNames.Namespaces, 'Create', { namespace: { name: `mem-${i + j}`, labels: { team: 'chaos' } } })));
      }
    } finally {
      g.close();
    }
    row.cases += NAMESPACES;
    await sleep(IDLE_MS);
    beforeFrames = rss();
    row.notes.push(`${NAMESPACES} namespaces: +${(beforeFrames - idle).toFixed(1)} MiB`);

    // Each connection sends a header announcing FRAME bytes and all but the last one. The daemon reads what its
    // buffering budget lets it (a connection beyond the budget is not read until there is room), so the test waits
    // for each write to drain or for a fixed time, whichever comes first, and then measures.
    const sockets: Socket[] = [];
    const payload = Buffer.alloc(FRAME - 1, 0x61);
    await Promise.all(
      Array.from({ length: CONNECTIONS }, () =>
        new Promise<void>((resolve) => {
          const s = createConnection(phase.ttrpcAddress);
          sockets.push(s);
          const timer = setTimeout(resolve, FILL_WAIT_MS);
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          s.once('error', done);
          s.once('close', done);
          s.once('connect', () => {
            s.write(encodeFrameHeader({ length: FRAME, streamId: 1, type: FrameType.Request, flags: 0 }));
            s.write(payload, done);
          });
        }),
      ),
    );
    row.cases += CONNECTIONS;
    const held = rss();
    for (const s of sockets) s.destroy();
    await sleep(IDLE_MS);
    afterClose = rss();
    row.notes.push(
      `${CONNECTIONS} ttrpc connections with unfinished ${FRAME / MiB} MiB frames: +${(held - beforeFrames).toFixed(1)} MiB held, ` +
        `+${(afterClose - beforeFrames).toFixed(1)} MiB still held ${IDLE_MS / 1000} s after they closed`,
    );
  });

  afterAll(async () => {
    row.rssAfterMiB = phase ? rss() : undefined;
    row.rssIdleMiB = row.rssAfterMiB;
    row.hwmMiB = phase?.peakRssMiB();
    writeRow(inject('chaosResultsDir'), row);
    await phase?.dispose();
  });

  it(`gives back the memory of unfinished ttrpc frames once their connections close (within ${RETAINED_BOUND_MIB} MiB)`, async () => {
    const retained = afterClose - beforeFrames;
    if (retained > RETAINED_BOUND_MIB) row.failures++;
    expect(await phase.responsive(), 'the daemon answers after the connections closed').toBe(true);
    expect(retained, `${retained.toFixed(1)} MiB still held after the connections closed`).toBeLessThanOrEqual(RETAINED_BOUND_MIB);
  });
});
