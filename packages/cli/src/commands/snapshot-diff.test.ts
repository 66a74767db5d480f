// snapshotDiff against an in-memory snapshotter and a fake Diff service (the generated DiffClient's Diff): which
// mounts go left and right, that the temporary views and the lease are gone afterwards, even on failure.
import { beforeEach, describe, expect, it } from 'vitest';
import type { containerd } from '@berth/api';
import { NotFoundError, UnavailableError, type OpContext, type Snapshotter } from '@berth/core';
import { expectFailure, MemorySnapshotter } from '@berth/core/testing';
import { snapshotDiff, type DiffDescriptor, type SnapshotDiffDeps } from './snapshot-diff.js';

type DiffRequest = containerd.services.diff.v1.DiffRequestInput;

const LAYER: containerd.types.Descriptor = {
  media_type: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: `sha256:${'ab'.repeat(32)}`,
  size: 123,
  annotations: { 'containerd.io/uncompressed': `sha256:${'cd'.repeat(32)}` },
};
const OPTIONS = { mediaType: LAYER.media_type, ref: 'my-ref', labels: { k: 'v' } };
const root: OpContext = { namespace: 'ns' };

let sn: MemorySnapshotter;
/** The lease of each snapshotter and Diff call, in call order. */
let leasesSeen: (string | undefined)[];
let requests: DiffRequest[];
let warnings: string[];
let leaseLog: string[];
let diffFailure: Error | undefined;

beforeEach(async () => {
  sn = new MemorySnapshotter();
  await sn.prepare(root, 'base-active', '');
  await sn.commit(root, 'base', 'base-active');
  await sn.prepare(root, 'child', 'base');
  await sn.prepare(root, 'top-active', 'base');
  await sn.commit(root, 'top', 'top-active');
  sn.calls.length = 0;
  leasesSeen = [];
  requests = [];
  warnings = [];
  leaseLog = [];
  diffFailure = undefined;
});

function deps(): SnapshotDiffDeps {
  const seen = <A extends unknown[], R>(fn: (op: OpContext, ...args: A) => Promise<R>) => (op: OpContext, ...args: A) => {
    leasesSeen.push(op.lease);
    return fn(op, ...args);
  };
  const snapshotter: Pick<Snapshotter, 'stat' | 'mounts' | 'view' | 'remove'> = {
    stat: seen((op, key: string) => sn.stat(op, key)),
    mounts: seen((op, key: string) => sn.mounts(op, key)),
    view: seen((op, key: string, parent: string) => sn.view(op, key, parent)),
    remove: seen((op, key: string) => sn.remove(op, key)),
  };
  // The fake Diff service: what containerd's Diff returns, or the configured failure.
  const diff: Pick<containerd.services.diff.v1.DiffClient, 'Diff'>['Diff'] = async (request) => {
    requests.push(request);
    if (diffFailure) throw diffFailure;
    return { diff: LAYER };
  };
  return {
    snapshotter,
    diff: (request, op) => {
      leasesSeen.push(op.lease);
      return diff(request);
    },
    createLease: async () => {
      leaseLog.push('create');
      return 'lease-1';
    },
    deleteLease: async (id) => void leaseLog.push(`delete ${id}`),
    warn: (m) => warnings.push(m),
  };
}

const read = async (desc: DiffDescriptor, op: OpContext) => ({ desc, lease: op.lease });

/** The keys of the snapshots left, sorted. */
const keys = () => [...sn.snapshots.keys()].sort();
const before = ['base', 'child', 'top'];

describe('snapshots diff', () => {
  it('diffs <a> (active: its own mounts) against <b> (committed: a temporary view) in ctr order, in a lease of its own', async () => {
    const out = await snapshotDiff(deps(), root, 'child', 'top', OPTIONS, read);
    expect(out.desc).toEqual({ mediaType: LAYER.media_type, digest: LAYER.digest, size: 123, annotations: LAYER.annotations });
    expect(out.lease).toBe('lease-1');

    const [request] = requests;
    const childId = sn.snapshots.get('child')?.id;
    expect(request?.left).toEqual([{ type: 'bind', source: `/fake/${childId}/fs`, options: ['rw', 'rbind'] }]);
    expect(request?.right).toHaveLength(1);
    expect(request?.right?.[0]?.options).toEqual(['ro', 'rbind']);
    expect(request).toMatchObject({ media_type: LAYER.media_type, ref: 'my-ref', labels: { k: 'v' } });

    const viewKey = sn.keysOf('view')[0] as string;
    expect(viewKey).toMatch(/^top-view-\d+-[A-Za-z0-9_-]{4}$/);
    expect(sn.calls.find((c) => c.method === 'view')?.args[1]).toBe('top');
    expect(sn.keysOf('remove')).toEqual([viewKey]);
    expect(keys()).toEqual(before);
    expect(leasesSeen.every((l) => l === 'lease-1')).toBe(true);
    expect(leasesSeen.length).toBeGreaterThanOrEqual(5);
    expect(leaseLog).toEqual(['create', 'delete lease-1']);
  });

  it('without <b>, diffs a view of the parent against <a>', async () => {
    await snapshotDiff(deps(), root, 'child', undefined, OPTIONS, read);
    const [parentView] = sn.calls.filter((c) => c.method === 'view');
    expect(parentView?.args[0]).toMatch(/^base-parent-view-/);
    expect(parentView?.args[1]).toBe('base');
    expect(requests[0]?.left?.[0]?.options).toEqual(['ro', 'rbind']);
    expect(requests[0]?.right?.[0]).toEqual({ type: 'bind', source: `/fake/${sn.snapshots.get('child')?.id}/fs`, options: ['rw', 'rbind'] });
    expect(keys()).toEqual(before);
  });

  it('without <b>, a committed snapshot without parent is diffed from an empty view, both views removed', async () => {
    await snapshotDiff(deps(), root, 'base', '', OPTIONS, read);
    const views = sn.calls.filter((c) => c.method === 'view').map((c) => c.args.slice(0, 2));
    expect(views).toEqual([
      [expect.stringMatching(/^-parent-view-/), ''],
      [expect.stringMatching(/^base-view-/), 'base'],
    ]);
    expect(requests).toHaveLength(1);
    expect(sn.keysOf('remove').sort()).toEqual(views.map(([k]) => k).sort());
    expect(keys()).toEqual(before);
  });

  it('uses the lease it is given and creates none', async () => {
    const out = await snapshotDiff(deps(), { namespace: 'ns', lease: 'mine' }, 'child', 'top', OPTIONS, read);
    expect(out.lease).toBe('mine');
    expect(leasesSeen.every((l) => l === 'mine')).toBe(true);
    expect(leaseLog).toEqual([]);
  });

  it('removes the views and the lease when the Diff service fails, and passes its error on', async () => {
    diffFailure = new UnavailableError('differ is down');
    await expectFailure(snapshotDiff(deps(), root, 'top', 'base', OPTIONS, read), 'unavailable', /differ is down/);
    expect(sn.keysOf('view')).toHaveLength(2);
    expect(keys()).toEqual(before);
    expect(leaseLog).toEqual(['create', 'delete lease-1']);
  });

  it('removes the lease when a snapshot is missing, and makes no Diff call', async () => {
    await expectFailure(snapshotDiff(deps(), root, 'child', 'missing', OPTIONS, read), 'not-found', /missing/);
    expect(requests).toEqual([]);
    expect(leaseLog).toEqual(['create', 'delete lease-1']);
    expect(keys()).toEqual(before);
  });

  it('warns about a view it could not remove and still returns the layer', async () => {
    sn.fail('remove', new NotFoundError('gone already'));
    const out = await snapshotDiff(deps(), root, 'child', 'top', OPTIONS, read);
    expect(out.desc.digest).toBe(LAYER.digest);
    expect(warnings).toEqual([expect.stringMatching(/^could not remove the temporary view top-view-\S+: gone already: not found$/)]);
  });

  it('refuses an empty <a> before any call', async () => {
    await expectFailure(snapshotDiff(deps(), root, '', undefined, OPTIONS, read), 'invalid-argument', 'snapshot id must be provided');
    expect(sn.calls).toEqual([]);
    expect(leaseLog).toEqual([]);
  });
});
