// Phase b: a mixed workload against berthd, SIGKILLed at random moments and restarted on the same dirs, cycle after
// cycle until the time budget (or --cycles) is spent. After every restart the ledger of acknowledged operations is
// held against the daemon's state, every blob file is re-hashed, and a sample of blobs is read back over the API.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { budget } from '../src/budget.js';
import { hasCtr, PhaseDaemon } from '../src/daemon.js';
import { Ledger } from '../src/ledger.js';
import { Rng } from '../src/rng.js';
import { newRow, writeRow } from '../src/summary.js';
import { observe, readBack, Workload } from '../src/workload.js';

const WORKERS = 3;
const READ_BACK_PER_CYCLE = 4;

describe.skipIf(!hasCtr())('b: SIGKILL loop', () => {
  const row = newRow('b', 'SIGKILL loop');
  const lost: string[] = [];
  const halfVisible: string[] = [];
  const wrong: string[] = [];
  const corrupt: string[] = [];
  const restartFailures: string[] = [];
  let phase: PhaseDaemon | undefined;
  let cycles = 0;
  /** Set by afterAll: a loop still running after its hook timed out must not start daemons nobody stops. */
  let cancelled = false;

  beforeAll(async () => {
    const seed = inject('chaosSeed');
    const rng = new Rng(seed + 2);
    const ledger = new Ledger();
    phase = await PhaseDaemon.start();
    row.rssBeforeMiB = phase.memory()?.rssMiB;
    const deadline = performance.now() + budget.killSeconds * 1000;
    let rehashed = 0;
    let readBackCount = 0;
    let worstRestart = 0;
    let sent = 0;
    while (!cancelled && performance.now() < deadline && (budget.cycles === 0 || cycles < budget.cycles)) {
      cycles++;
      const workload = new Workload(phase.address, ledger, rng, `c${cycles}`);
      const running = workload.run(WORKERS);
      // Mostly mid-workload; sometimes right after the restart, while the daemon may still be recovering.
      await new Promise((r) => setTimeout(r, rng.next() < 0.15 ? rng.int(0, 50) : rng.int(150, 1500)));
      await phase.kill();
      workload.stop();
      await running;
      sent += workload.counts.sent;
      if (cancelled) break;
      try {
        worstRestart = Math.max(worstRestart, await phase.revive());
      } catch (err) {
        restartFailures.push(`cycle ${cycles}: ${(err as Error).message.slice(0, 400)}`);
        break;
      }
      const obs = await observe(phase.address, phase.daemon.root);
      rehashed += obs.rehashed;
      corrupt.push(...obs.corrupt.map((d) => `cycle ${cycles}: blob file ${d} does not hash to its name`));
      const findings = ledger.reconcile(obs);
      const tag = (list: string[]) => list.map((x) => `cycle ${cycles}: ${x}`);
      lost.push(...tag(findings.lost));
      halfVisible.push(...tag(findings.halfVisible));
      wrong.push(...tag(findings.wrong));
      // Only gc.root blobs: a collection still running may take the others while they are read.
      const held = [...ledger.blobs.values()].filter((b) => b.root).map((b) => b.digest);
      const sample = held.sort(() => rng.next() - 0.5).slice(0, READ_BACK_PER_CYCLE);
      corrupt.push(...(await readBack(phase.address, sample)).map((d) => `cycle ${cycles}: ${d}`));
      readBackCount += sample.length;
    }
    row.cases = cycles;
    row.lost = lost.length;
    row.failures = lost.length + halfVisible.length + wrong.length + corrupt.length + restartFailures.length;
    row.notes.push(
      `${cycles} kills; ${sent} operations sent, ${ledger.acknowledged} acknowledged; ${rehashed} blob re-hashes, ${readBackCount} read back; ` +
        `ledger at the end: ${ledger.blobs.size} blobs, ${ledger.leases.size} leases, ${ledger.namespaces.size} namespaces; slowest restart ${Math.round(worstRestart)} ms; seed ${seed}`,
    );
  });

  afterAll(async () => {
    cancelled = true;
    row.stallMs = phase?.worstStallMs();
    row.rssAfterMiB = phase?.memory()?.rssMiB;
    row.hwmMiB = phase?.peakRssMiB();
    writeRow(inject('chaosResultsDir'), row);
    await phase?.dispose();
  });

  it('restarts after every SIGKILL', () => {
    expect(restartFailures, restartFailures.join('\n')).toEqual([]);
    expect(cycles).toBeGreaterThan(0);
  });

  it('loses nothing acknowledged (blobs, labels, leases and their resources, namespaces)', () => {
    expect(lost, lost.join('\n')).toEqual([]);
  });

  it('shows nothing unacknowledged half done', () => {
    expect(halfVisible, halfVisible.join('\n')).toEqual([]);
  });

  it('keeps every blob intact and shows nothing nobody asked for', () => {
    expect([...corrupt, ...wrong], [...corrupt, ...wrong].join('\n')).toEqual([]);
  });
});
