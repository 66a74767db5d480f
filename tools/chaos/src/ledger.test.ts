import { describe, expect, it } from 'vitest';
import { Ledger, type Observed } from './ledger.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function observed(parts: Partial<{ [K in keyof Observed]: Observed[K] }> = {}): Observed {
  const blobs = parts.blobs ?? new Map();
  return { blobs, blobFiles: parts.blobFiles ?? new Set(blobs.keys()), leases: parts.leases ?? new Map(), namespaces: parts.namespaces ?? new Map() };
}

/** A committed, acknowledged gc.root blob. */
function rootBlob(ledger: Ledger, digest: string, labels: Record<string, string> = { 'containerd.io/gc.root': 'x' }) {
  const blob = ledger.committing(digest, 3, labels);
  blob.phase = 'present';
  blob.root = true;
  blob.busy = false;
  return blob;
}

describe('Ledger.reconcile', () => {
  it('reports an acknowledged gc.root blob that is gone as lost, and a collected unheld one as nothing', () => {
    const ledger = new Ledger();
    rootBlob(ledger, D1);
    const loose = ledger.committing(D2, 3, {});
    loose.phase = 'present'; // ingested, never labelled: collectable
    const f = ledger.reconcile(observed());
    expect(f.lost).toEqual([expect.stringContaining('acknowledged (gc.root), missing')]);
    expect(f.halfVisible).toEqual([]);
    expect(ledger.blobs.size).toBe(0);
  });

  it('accepts an unacknowledged commit that is absent or whole, and reports one missing its labels as half-visible', () => {
    const absent = new Ledger();
    absent.committing(D1, 3, { a: '1', b: '2' });
    expect(absent.reconcile(observed())).toEqual({ lost: [], halfVisible: [], wrong: [] });

    const whole = new Ledger();
    whole.committing(D1, 3, { a: '1', b: '2' });
    expect(whole.reconcile(observed({ blobs: new Map([[D1, { size: 3, labels: { b: '2', a: '1' } }]]) }))).toEqual({ lost: [], halfVisible: [], wrong: [] });
    expect(whole.blobs.get(D1)?.phase).toBe('present');

    const half = new Ledger();
    half.committing(D1, 3, { a: '1', b: '2' });
    const f = half.reconcile(observed({ blobs: new Map([[D1, { size: 3, labels: { a: '1' } }]]) }));
    expect(f.halfVisible).toEqual([expect.stringContaining('label b=(none), expected 2')]);
  });

  it('allows the old or the new value of an unacknowledged label change, nothing else', () => {
    const ledger = new Ledger();
    const blob = rootBlob(ledger, D1, { 'containerd.io/gc.root': 'x', chaos: 'v1' });
    ledger.relabel(blob.labels, 'chaos', 'v2');
    const old = ledger.reconcile(observed({ blobs: new Map([[D1, { size: 3, labels: { 'containerd.io/gc.root': 'x', chaos: 'v1' } }]]) }));
    expect(old.lost).toEqual([]);
    ledger.relabel(blob.labels, 'chaos', 'v2');
    const other = ledger.reconcile(observed({ blobs: new Map([[D1, { size: 3, labels: { 'containerd.io/gc.root': 'x', chaos: 'v9' } }]]) }));
    expect(other.lost).toEqual([expect.stringContaining('label chaos=v9, expected v1 or v2')]);
  });

  it('reports a torn record (listed, no blob file), a wrong size and a deleted blob that is back', () => {
    const ledger = new Ledger();
    rootBlob(ledger, D1);
    const gone = rootBlob(ledger, D2);
    gone.phase = 'deleted';
    const f = ledger.reconcile(
      observed({
        blobs: new Map<string, { size: number; labels: Record<string, string> }>([
          [D1, { size: 4, labels: { 'containerd.io/gc.root': 'x' } }],
          [D2, { size: 3, labels: {} }],
        ]),
        blobFiles: new Set([D2]),
      }),
    );
    expect(f.wrong).toEqual(expect.arrayContaining([expect.stringContaining('blob file is gone'), expect.stringContaining('size 4'), expect.stringContaining('deleted, and back')]));
  });

  it('holds leased blobs while the lease lives, and lets them go with it', () => {
    const ledger = new Ledger();
    const lease = ledger.creatingLease('l1', { team: 'chaos' });
    lease.phase = 'present';
    const blob = ledger.committing(D1, 3, { chaos: 'v0' }, 'l1');
    blob.phase = 'present';
    blob.leases.add('l1');
    lease.resources.set(D1, 'present');
    const live = ledger.reconcile(observed({ leases: new Map([['l1', { labels: { team: 'chaos' }, content: new Set([D1]) }]]) }));
    expect(live.lost).toEqual([expect.stringContaining('written under a lease, acknowledged (held by lease l1), missing')]);

    const after = new Ledger();
    const l2 = after.creatingLease('l2', {});
    l2.phase = 'deleted';
    const b2 = after.committing(D2, 3, {}, 'l2');
    b2.phase = 'present';
    b2.leases.add('l2');
    expect(after.reconcile(observed())).toEqual({ lost: [], halfVisible: [], wrong: [] });
  });

  it('reports leases: missing, with partial labels, losing resources, or nobody asked for', () => {
    const ledger = new Ledger();
    const kept = ledger.creatingLease('kept', { a: '1' });
    kept.phase = 'present';
    kept.resources.set(D1, 'present');
    const missing = ledger.creatingLease('missing', {});
    missing.phase = 'present';
    ledger.creatingLease('half', { a: '1', b: '2' });
    const f = ledger.reconcile(
      observed({
        leases: new Map<string, { labels: Record<string, string>; content: Set<string> }>([
          ['kept', { labels: { a: '1' }, content: new Set<string>() }],
          ['half', { labels: { a: '1' }, content: new Set<string>() }],
          ['stranger', { labels: {}, content: new Set<string>() }],
        ]),
      }),
    );
    expect(f.lost).toEqual(expect.arrayContaining([expect.stringContaining('lease missing: acknowledged, missing'), expect.stringContaining(`resource ${D1} missing`)]));
    expect(f.halfVisible).toEqual([expect.stringContaining('lease half: labels')]);
    expect(f.wrong).toEqual([expect.stringContaining('lease stranger: nobody asked for it')]);
  });

  it('reports namespaces: acknowledged and missing, or with a lost label', () => {
    const ledger = new Ledger();
    const a = ledger.creatingNamespace('chaos-n-a', { team: 'x' });
    a.phase = 'present';
    const b = ledger.creatingNamespace('chaos-n-b', { team: 'x' });
    b.phase = 'present';
    const f = ledger.reconcile(observed({ namespaces: new Map([['chaos-n-b', { team: 'y' }]]) }));
    expect(f.lost).toEqual([expect.stringContaining('namespace chaos-n-a: acknowledged, missing'), expect.stringContaining('namespace chaos-n-b: label team=y')]);
  });
});
