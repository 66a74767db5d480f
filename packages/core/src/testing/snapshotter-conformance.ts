/**
 * The behaviour every snapshotter promises, modelled on containerd's snapshots/testsuite: run it from each
 * implementation's tests with a factory that yields a fresh snapshotter per case. Every case mounts what Prepare,
 * View and Mounts return (with @berth/sys's mountAll, on a temp dir, unmounted again in `finally`) and checks the
 * trees on disk, so it needs root; without root the suite is skipped, saying so.
 *
 * Only what the `Snapshotter` interface promises is checked, so raw and namespaced snapshotters, and a proxy over
 * the wire, all pass it. The cases are exported too (`snapshotterConformanceCases`, `runSnapshotterCase`), so that
 * an implementation's tests can show that a case fails on a snapshotter that breaks its promise.
 */
import { afterEach, beforeEach, describe, it } from 'vitest';
import type { ConformanceSys } from './fstest.js';
import { apiCases } from './snapshotter-api-cases.js';
import { CaseEnv, CaseSkipped, type SnapshotterCase, type SnapshotterFixture } from './snapshotter-env.js';
import { treeCases } from './snapshotter-tree-cases.js';

export type { SnapshotterCase, SnapshotterFixture } from './snapshotter-env.js';
export { CaseEnv, CaseSkipped, mountsUnder } from './snapshotter-env.js';
export * from './fstest.js';

export const snapshotterConformanceCases: readonly SnapshotterCase[] = [...treeCases, ...apiCases];

export interface SnapshotterConformanceOptions {
  /** mountAll, unmountAll, mknod and the xattr calls: pass `@berth/sys` (`import * as sys from '@berth/sys'`). */
  readonly sys: ConformanceSys;
  /** Cases this implementation cannot pass, by name, each with the reason (reported as skipped). */
  readonly skip?: Readonly<Record<string, string>>;
}

/**
 * The cases a suite over a wrapper of the native snapshotter (a prefixing view, the namespaced metadata view, the
 * proxy over the wire) leaves to the native suite itself: the 128-layer chain copies every layer whole on native,
 * which is quadratic in disk work (minutes on a busy two-core machine) and exercises the backend, not the wrapper;
 * the overlayfs variants still run it through every wrapper, where the 128 lower dirs are the point.
 */
export const casesLeftToTheNativeSuite: Readonly<Record<string, string>> = {
  '128 layers mounted': 'the native suite runs it; over native it is quadratic copying that tests the backend, not this wrapper',
};

/** Why the suite cannot run here, or undefined when it can (mounts need root). */
export function snapshotterSuiteUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'the snapshotter suite mounts snapshots, which needs Linux';
  if (process.getuid?.() !== 0) return 'the snapshotter suite mounts snapshots (bind and overlay mounts), which needs root';
  return undefined;
}

export function describeSnapshotterConformance(
  name: string,
  factory: () => Promise<SnapshotterFixture>,
  options: SnapshotterConformanceOptions,
): void {
  const why = snapshotterSuiteUnavailable();
  const known = new Set(snapshotterConformanceCases.map((c) => c.name));
  for (const skipped of Object.keys(options.skip ?? {})) {
    if (!known.has(skipped)) throw new Error(`describeSnapshotterConformance(${name}): no case is named ${JSON.stringify(skipped)}`);
  }
  describe.skipIf(why !== undefined)(`snapshotter conformance: ${name}${why ? ` (skipped: ${why})` : ''}`, () => {
    let fixture: SnapshotterFixture | undefined;
    let env: CaseEnv | undefined;

    beforeEach(async (t) => {
      fixture = await factory();
      env = await CaseEnv.create(fixture, options.sys, (reason) => {
        t.skip(reason);
        throw new CaseSkipped(reason);
      });
    });

    afterEach(async () => {
      try {
        await env?.dispose();
      } finally {
        await fixture?.cleanup();
        fixture = undefined;
        env = undefined;
      }
    });

    for (const c of snapshotterConformanceCases) {
      const reason = options.skip?.[c.name];
      if (reason !== undefined) {
        it.skip(`${c.name} (skipped: ${reason})`, () => undefined);
        continue;
      }
      it(c.name, async (t) => {
        const current = env!;
        // The env's skip must reach this test's context, not the hook's.
        (current as { skip: (reason: string) => never }).skip = (r: string) => {
          t.skip(r);
          throw new CaseSkipped(r);
        };
        await c.run(current);
      }, c.timeout);
    }
  });
}

/**
 * Runs one case outside `describeSnapshotterConformance` (a fresh fixture, its own work dir, everything unmounted
 * and released after), rejecting as the case fails: `CaseSkipped` when it skipped itself.
 */
export async function runSnapshotterCase(c: SnapshotterCase, factory: () => Promise<SnapshotterFixture>, sys: ConformanceSys): Promise<void> {
  const fixture = await factory();
  try {
    const env = await CaseEnv.create(fixture, sys, (reason) => {
      throw new CaseSkipped(reason);
    });
    try {
      await c.run(env);
    } finally {
      await env.dispose();
    }
  } finally {
    await fixture.cleanup();
  }
}

/** The case of that name (an Error listing the names when there is none). */
export function snapshotterCase(name: string): SnapshotterCase {
  const found = snapshotterConformanceCases.find((c) => c.name === name);
  if (!found) throw new Error(`no snapshotter case is named ${JSON.stringify(name)}; the cases: ${snapshotterConformanceCases.map((c) => c.name).join('; ')}`);
  return found;
}
