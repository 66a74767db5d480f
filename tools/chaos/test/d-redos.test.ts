// Phase d: filters built to make a backtracking regexp engine take exponential time, against labels, refs and event
// digests made to trigger it. containerd matches `~=` with Go's RE2 (linear time), so each of these takes it
// milliseconds. A probe measures the daemon's event-loop stall from outside while each runs; a case that does not
// finish within CHAOS_STUCK_MS is a stuck daemon, SIGKILLed and restarted so the next case still runs.
import { spawn } from 'node:child_process';
import { packAny, ServiceNames } from '@berth/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { budget } from '../src/budget.js';
import { writeBlob } from '../src/content.js';
import { CTR, hasCtr, PhaseDaemon } from '../src/daemon.js';
import { RawGrpc } from '../src/raw-grpc.js';
import { newRow, writeRow } from '../src/summary.js';

const NS = 'chaos';
/** 30 a's then a character that makes `(a+)+$` fail only after trying every split of the a's. */
const EVIL = `${'a'.repeat(30)}!`;
const EVIL_FILTER = 'labels."a"~="(a+)+$"';

interface Outcome {
  readonly stallMs: number;
  readonly finished: boolean;
  readonly detail: string;
}

describe.skipIf(!hasCtr())('d: ReDoS filters', () => {
  const row = newRow('d', 'ReDoS filters');
  let phase: PhaseDaemon;
  let g: RawGrpc;
  let victim = '';
  const outcomes = new Map<string, Outcome>();

  const connect = () => {
    g?.close();
    g = new RawGrpc(phase.address, { namespace: NS, timeoutMs: 10_000 });
  };

  /**
   * Runs one case with the probe's window around it. A case still running after `stuckMs` has stalled the daemon
   * for at least that long; the daemon is then SIGKILLed (by its PID) and restarted on the same dirs.
   */
  const measure = async (name: string, run: (timeoutMs: number) => Promise<string>, counted = true): Promise<Outcome> => {
    phase.stall.reset();
    let finished = false;
    const detail = await Promise.race([
      run(budget.stuckMs).then((d) => ((finished = true), d), (err: Error) => ((finished = true), `failed: ${err.message}`)),
      new Promise<string>((r) => setTimeout(() => r(`did not finish within ${budget.stuckMs} ms`), budget.stuckMs)),
    ]);
    const outcome = { stallMs: phase.stall.worst(), finished, detail: detail.slice(0, 300) };
    if (counted) {
      row.cases++;
      if (outcome.stallMs > budget.stallMs || !finished) row.failures++;
      outcomes.set(name, outcome);
    }
    if (!finished || !(await phase.responsive(2000))) {
      await phase.restart();
      connect();
    }
    return outcome;
  };

  const ctr = (args: readonly string[]) => async (timeoutMs: number) => {
    const r = await phase.daemon.ctr(args, { namespace: NS, timeoutMs });
    if (r.signal) throw new Error(`ctr ${args[0]} killed after ${timeoutMs} ms`);
    return `exit ${r.code}: ${(r.code === 0 ? r.stdout : r.stderr).trim().split('\n').length} lines`;
  };

  beforeAll(async () => {
    phase = await PhaseDaemon.start();
    row.rssBeforeMiB = phase.memory()?.rssMiB;
    connect();
    await g.call(ServiceNames.Leases, 'Create', { id: 'evil', labels: { a: EVIL } });
    await writeBlob(g, 'evil-blob', Buffer.from('evil label'), { labels: { a: EVIL, 'containerd.io/gc.root': 'chaos' } });
    victim = await writeBlob(g, 'victim-blob', Buffer.from('removed while a subscriber filters'), { labels: { 'containerd.io/gc.root': 'chaos' } });
    await writeBlob(g, EVIL, Buffer.from('partial'), { commit: false, lease: 'evil' });
    // Baseline: the same listing with a filter any engine matches in linear time.
    const base = await measure('baseline', ctr(['content', 'ls', 'labels."a"=="x"']), false);
    row.notes.push(`baseline (content ls, labels."a"=="x"): worst stall ${base.stallMs} ms`);
  });

  afterAll(async () => {
    for (const [name, o] of outcomes) row.notes.push(`${name}: worst stall ${o.stallMs} ms, ${o.detail}`);
    row.stallMs = phase?.worstStallMs();
    row.rssAfterMiB = phase?.memory()?.rssMiB;
    row.hwmMiB = phase?.peakRssMiB();
    writeRow(inject('chaosResultsDir'), row);
    g?.close();
    await phase?.dispose();
  });

  const expectQuick = (name: string) => {
    const o = outcomes.get(name)!;
    expect(o.finished, `${name}: ${o.detail}`).toBe(true);
    expect(o.stallMs, `${name}: the daemon's event loop stalled ${o.stallMs} ms (bound ${budget.stallMs} ms)`).toBeLessThanOrEqual(budget.stallMs);
  };

  it(`ctr content ls '${EVIL_FILTER}' against a label ${EVIL.length} characters long`, async () => {
    await measure('content ls', ctr(['content', 'ls', EVIL_FILTER]));
    expectQuick('content ls');
  });

  it(`ctr leases ls '${EVIL_FILTER}'`, async () => {
    await measure('leases ls', ctr(['leases', 'ls', EVIL_FILTER]));
    expectQuick('leases ls');
  });

  it(`Content.ListStatuses 'ref~="(a+)+$"' against an ingest ref ${EVIL.length} characters long`, async () => {
    await measure('ListStatuses', async (timeoutMs) => {
      const res = await g.call<{ statuses: unknown[] }>(ServiceNames.Content, 'ListStatuses', { filters: ['ref~="(a+)+$"'] }, { timeoutMs });
      return `${res.statuses.length} statuses`;
    });
    expectQuick('ListStatuses');
  });

  it(`ctr events 'event.digest~="([0-9a-f]+)+!"' subscribed, then ctr content rm`, async () => {
    // The subscriber also takes a ready topic (filters are ORed), so the test knows when it is listening.
    const events = spawn(CTR, ['--address', phase.address, 'events', 'event.digest~="([0-9a-f]+)+!"', 'topic=="/chaos/ready"'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    events.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const ready = packAny('containerd.events.NamespaceCreate', { name: 'ready', labels: {} });
      for (let i = 0; i < 50 && !out.includes('/chaos/ready'); i++) {
        await g.call(ServiceNames.Events, 'Publish', { topic: '/chaos/ready', event: ready });
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out, 'ctr events is subscribed').toContain('/chaos/ready');
      await measure('events + content rm', ctr(['content', 'rm', victim]));
    } finally {
      events.kill('SIGKILL');
    }
    expectQuick('events + content rm');
  });
});
