// A full disk under a real berthd: root and state on a small tmpfs that the test mounts (and unmounts in its
// teardown), filled by content ingests of random data through Debian's ctr, leases, labels and namespaces, and a
// filler file. Every refused write gets containerd's answer (code Unknown, `…: no space left on device`), berthd
// stays up and serves reads, nothing acknowledged is lost, a failed ingest leaves no visible blob, and writes work
// again once space is freed, without a restart. A restart on the full disk starts and loses nothing either.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { ServiceNames } from '@berth/api';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '@berth/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { unaryCall } from './grpc-raw.js';
import { CTR, hasCtr, run, startBerthd, type Berthd, type RunResult } from './harness.js';
import { sha256Digest as sha256 } from '@berth/core';

const KiB = 1024;
const MiB = 1024 * KiB;
const NO_SPACE = /: no space left on device$/;

/** GC never runs on its own: blobs ingested by ctr are unrooted, and the ledger must not lose them to a collection. */
const NO_GC = ['[plugins."io.containerd.gc.v1.scheduler"]', 'mutation_threshold = 0', 'deletion_threshold = 1000000', 'startup_delay = "0s"'].join('\n');

const rows = (stdout: string) => stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]!);

/** `ctr content ingest` with stdin from a regular file (off the tmpfs): ctr seeks in it to resume an ingest. */
async function ingestFromFile(daemon: Berthd, ref: string, data: Buffer): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-disk-full-'));
  try {
    await writeFile(join(dir, 'data'), data);
    return await run('/bin/sh', ['-c', 'exec "$0" --address "$1" content ingest "$2" < "$3"', CTR, daemon.address, ref, join(dir, 'data')]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What berthd acknowledged: each item must still be there, intact, after every later step. */
interface Ledger {
  blobs: Map<string, Buffer>;
  leases: Set<string>;
  namespaces: Map<string, Record<string, string>>;
}

async function checkLedger(daemon: Berthd, ledger: Ledger): Promise<void> {
  for (const [digest, data] of ledger.blobs) {
    const get = await daemon.ctr(['content', 'get', digest]);
    expect(get.code, get.stderr).toBe(0);
    expect(sha256(get.stdoutBuffer)).toBe(sha256(data));
  }
  const leases = await daemon.ctr(['leases', 'ls', '-q']);
  expect(leases.code, leases.stderr).toBe(0);
  const listed = new Set(leases.stdout.split('\n').filter(Boolean));
  for (const id of ledger.leases) expect(listed.has(id), `lease ${id}`).toBe(true);
  for (const [ns, labels] of ledger.namespaces) {
    const got = await unaryCall<{ namespace: { labels: Record<string, string> } }>(daemon.address, ServiceNames.Namespaces, 'Get', { name: ns });
    expect(got.error?.message).toBeUndefined();
    expect(got.response?.namespace.labels).toEqual(labels);
  }
}

describe.skipIf(tmpfsUnavailable() !== undefined || !hasCtr())('berthd on a full disk', () => {
  let fs: Tmpfs | undefined;
  let daemon: Berthd | undefined;

  afterEach(async () => {
    try {
      await daemon?.stop();
    } finally {
      daemon = undefined;
      await fs?.dispose();
      fs = undefined;
    }
  });

  it('refuses writes with the disk error, keeps serving and everything it acknowledged, and recovers when space is freed', { timeout: 180_000 }, async () => {
    fs = await mountTmpfs(16 * MiB);
    daemon = await startBerthd({ dir: fs.path, config: NO_GC, logLevel: 'info' });
    const metaFile = join(daemon.root, 'io.containerd.metadata.v1.lmdb', 'meta.lmdb');
    const ledger: Ledger = { blobs: new Map(), leases: new Set(), namespaces: new Map() };

    // Before the disk fills: a little of everything.
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(64 * KiB);
      const r = await daemon.ctr(['content', 'ingest', `before-${i}`], { input: data });
      expect(r.code, r.stderr).toBe(0);
      ledger.blobs.set(sha256(data), data);
    }
    expect((await daemon.ctr(['leases', 'create', '--id', 'before', 'team=berth'])).code).toBe(0);
    ledger.leases.add('before');
    expect((await daemon.ctr(['namespaces', 'create', 'before', 'team=berth'])).code).toBe(0);
    ledger.namespaces.set('before', { team: 'berth' });

    await fs.fill({ leave: 1536 * KiB });

    // Content: ingests of random data until one is refused.
    let refusedIngest: { ref: string; data: Buffer; stderr: string } | undefined;
    for (let i = 0; i < 100 && !refusedIngest; i++) {
      const data = randomBytes(256 * KiB);
      const r = await daemon.ctr(['content', 'ingest', `fill-${i}`], { input: data });
      if (r.code === 0) ledger.blobs.set(sha256(data), data);
      else refusedIngest = { ref: `fill-${i}`, data, stderr: r.stderr };
    }
    expect(refusedIngest, 'no ingest was refused').toBeDefined();
    // ctr (errdefs.FromGRPC) appends the class of an Unknown error: `…: no space left on device: unknown`.
    expect(refusedIngest!.stderr.trim()).toMatch(
      /^ctr: failed to copy: failed to send write: write \S+\/io\.containerd\.content\.v1\.content\/ingest\/[0-9a-f]{64}\/data: no space left on device: unknown$/,
    );
    expect(daemon.alive).toBe(true);
    // No half-visible blob: the refused one can be neither listed nor read.
    const refusedDigest = sha256(refusedIngest!.data);
    expect(rows((await daemon.ctr(['content', 'ls'])).stdout)).not.toContain(refusedDigest);
    expect((await daemon.ctr(['content', 'get', refusedDigest])).code).not.toBe(0);

    // Metadata: leases with labels until one is refused; then namespaces and labels are refused too.
    const label = 'x'.repeat(3000);
    let refusedLease: string | undefined;
    for (let i = 0; i < 500 && !refusedLease; i++) {
      const r = await daemon.ctr(['leases', 'create', '--id', `fill-${i}`, `big=${label}`]);
      if (r.code === 0) ledger.leases.add(`fill-${i}`);
      else {
        refusedLease = `fill-${i}`;
        expect(r.stderr.trim()).toBe(`ctr: write ${metaFile}: no space left on device: unknown`);
      }
    }
    expect(refusedLease, 'no lease was refused').toBeDefined();
    await new Promise((r) => setTimeout(r, 200));
    expect(daemon.alive, daemon.logs.slice(-2000)).toBe(true);
    // containerd's code for these: Unknown, with the message as it is.
    const lease = await unaryCall(daemon.address, ServiceNames.Leases, 'Create', { id: 'raw', labels: { big: label } }, { 'containerd-namespace': 'default' });
    expect(lease.error?.code).toBe(status.UNKNOWN);
    expect(lease.error?.details).toBe(`write ${metaFile}: no space left on device`);
    const ns = await unaryCall(daemon.address, ServiceNames.Namespaces, 'Create', { namespace: { name: 'refused', labels: { big: label } } });
    expect(ns.error?.code).toBe(status.UNKNOWN);
    expect(ns.error?.details).toMatch(NO_SPACE);
    const [someBlob] = ledger.blobs.keys();
    const labelled = await daemon.ctr(['content', 'label', someBlob!, `big=${label}`]);
    expect(labelled.code).not.toBe(0);
    expect(labelled.stderr.trim()).toBe(`ctr: write ${metaFile}: no space left on device: unknown`);

    // Still up, still serving reads, nothing acknowledged lost, nothing refused half there.
    expect(daemon.alive).toBe(true);
    expect((await daemon.ctr(['version'])).code).toBe(0);
    await checkLedger(daemon, ledger);
    expect((await daemon.ctr(['leases', 'ls', '-q'])).stdout.split('\n')).not.toContain(refusedLease);
    expect(rows((await daemon.ctr(['namespaces', 'ls'])).stdout)).not.toContain('refused');
    expect((await daemon.ctr(['content', 'ls'])).stdout).not.toContain('big=');

    // Space freed: every kind of write works again, without a restart; the refused ingest resumes under its ref.
    await fs.unfill();
    const retried = await ingestFromFile(daemon, refusedIngest!.ref, refusedIngest!.data);
    expect(retried.code, retried.stderr).toBe(0);
    ledger.blobs.set(refusedDigest, refusedIngest!.data);
    expect((await daemon.ctr(['leases', 'create', '--id', refusedLease!, `big=${label}`])).code).toBe(0);
    ledger.leases.add(refusedLease!);
    expect((await daemon.ctr(['namespaces', 'create', 'refused', 'team=berth'])).code).toBe(0);
    ledger.namespaces.set('refused', { team: 'berth' });
    expect((await daemon.ctr(['content', 'label', someBlob!, 'after=yes'])).code).toBe(0);
    await checkLedger(daemon, ledger);

    // A restart on a full disk: berthd starts, serves, and has lost nothing.
    await fs.fill();
    await daemon.stop();
    daemon = await startBerthd({ dir: fs.path, config: NO_GC, logLevel: 'info' });
    expect((await daemon.ctr(['version'])).code).toBe(0);
    await checkLedger(daemon, ledger);
    const refused = await daemon.ctr(['leases', 'create', '--id', 'still-full', `big=${label}`]);
    expect(refused.stderr.trim()).toBe(`ctr: write ${metaFile}: no space left on device: unknown`);
    await fs.unfill();
    expect((await daemon.ctr(['leases', 'create', '--id', 'still-full'])).code).toBe(0);
    expect(daemon.alive).toBe(true);
  });
});
