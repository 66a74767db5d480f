// What the SIGKILL loop's workload was told: every blob, label, lease, lease resource and namespace it asked for,
// with whether the daemon acknowledged it. After each restart `reconcile` holds the daemon's state against it:
// nothing acknowledged may be missing, nothing unacknowledged may be half there (a blob without the labels it was
// committed with, a lease or namespace without its labels), nothing may appear that nobody asked for; then the
// unacknowledged operations are resolved to what the daemon shows, so the next cycle starts from known state.

/** A value a label may have; `undefined` is "no such label". */
type LabelValue = string | undefined;

export interface LabelState {
  /** Candidates: the acknowledged value, plus the value of an operation in flight or unacknowledged. */
  readonly values: Set<LabelValue>;
}

/** creating/deleting: requested, not (yet) acknowledged. */
export type Phase = 'creating' | 'present' | 'deleting' | 'deleted';

export interface BlobRecord {
  readonly digest: string;
  readonly size: number;
  /** How it was written (named in findings). */
  readonly origin: string;
  phase: Phase;
  /** Committed with `containerd.io/gc.root` (or labelled with it, acknowledged). */
  root: boolean;
  /** Leases whose acknowledged membership holds the blob. */
  readonly leases: Set<string>;
  readonly labels: Map<string, LabelState>;
  busy: boolean;
}

export interface LeaseRecord {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  phase: Phase;
  /** Content digests: acknowledged (`present`) or in flight (`adding`). */
  readonly resources: Map<string, 'adding' | 'present'>;
  busy: boolean;
}

export interface NamespaceRecord {
  readonly name: string;
  phase: Phase;
  readonly labels: Map<string, LabelState>;
  busy: boolean;
}

export interface Observed {
  /** Content.List of the workload's namespace. */
  readonly blobs: ReadonlyMap<string, { size: number; labels: Readonly<Record<string, string>> }>;
  /** Digests of the blob files on disk. */
  readonly blobFiles: ReadonlySet<string>;
  readonly leases: ReadonlyMap<string, { labels: Readonly<Record<string, string>>; content: ReadonlySet<string> }>;
  /** Namespaces the workload created (its own name prefix), with their labels. */
  readonly namespaces: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

export interface Findings {
  /** Acknowledged and gone (an object, a lease resource, or a label's acknowledged value). */
  readonly lost: string[];
  /** Unacknowledged and partly there. */
  readonly halfVisible: string[];
  /** Everything else that is wrong: unexpected objects or labels, deleted objects back, records without a blob. */
  readonly wrong: string[];
}

const labelMap = (labels: Readonly<Record<string, string>>): Map<string, LabelState> =>
  new Map(Object.entries(labels).map(([k, v]) => [k, { values: new Set<LabelValue>([v]) }]));

export class Ledger {
  readonly blobs = new Map<string, BlobRecord>();
  readonly leases = new Map<string, LeaseRecord>();
  readonly namespaces = new Map<string, NamespaceRecord>();
  acknowledged = 0;
  unacknowledged = 0;

  // --- requests, made before the operation is sent --------------------------------------------------------------

  /** A blob about to be committed with `labels` (atomically: all of them or none). */
  committing(digest: string, size: number, labels: Readonly<Record<string, string>>, lease?: string, origin = lease ? 'written under a lease' : 'committed'): BlobRecord {
    const blob: BlobRecord = { digest, size, origin, phase: 'creating', root: false, leases: new Set(), labels: labelMap(labels), busy: true };
    if (lease) this.leases.get(lease)?.resources.set(digest, 'adding');
    this.blobs.set(digest, blob);
    return blob;
  }

  creatingLease(id: string, labels: Readonly<Record<string, string>>): LeaseRecord {
    const lease: LeaseRecord = { id, labels, phase: 'creating', resources: new Map(), busy: true };
    this.leases.set(id, lease);
    return lease;
  }

  creatingNamespace(name: string, labels: Readonly<Record<string, string>>): NamespaceRecord {
    const ns: NamespaceRecord = { name, phase: 'creating', labels: labelMap(labels), busy: true };
    this.namespaces.set(name, ns);
    return ns;
  }

  /** A label change in flight: the old value stays a candidate until the daemon acknowledges. */
  relabel(labels: Map<string, LabelState>, key: string, value: LabelValue): void {
    const state = labels.get(key) ?? { values: new Set<LabelValue>([undefined]) };
    state.values.add(value);
    labels.set(key, state);
  }

  // --- acknowledgements -----------------------------------------------------------------------------------------

  ack(): void {
    this.acknowledged++;
  }

  settleLabel(labels: Map<string, LabelState>, key: string, value: LabelValue): void {
    labels.set(key, { values: new Set([value]) });
  }

  /** True when the blob must exist: it has gc.root, or a live lease holds it. */
  holds(blob: BlobRecord): boolean {
    if (blob.root) return true;
    for (const id of blob.leases) if (this.leases.get(id)?.phase === 'present') return true;
    return false;
  }

  // --- after a restart ------------------------------------------------------------------------------------------

  reconcile(obs: Observed): Findings {
    const f: Findings = { lost: [], halfVisible: [], wrong: [] };
    const checkLabels = (what: string, labels: Map<string, LabelState>, seen: Readonly<Record<string, string>>, into: string[]) => {
      for (const [key, state] of labels) {
        const value = Object.hasOwn(seen, key) ? seen[key] : undefined;
        if (!state.values.has(value)) into.push(`${what}: label ${key}=${value ?? '(none)'}, expected ${[...state.values].map((v) => v ?? '(none)').join(' or ')}`);
      }
      for (const key of Object.keys(seen)) if (!labels.has(key)) into.push(`${what}: unexpected label ${key}=${seen[key]}`);
    };
    const settleLabels = (labels: Map<string, LabelState>, seen: Readonly<Record<string, string>>) => {
      labels.clear();
      for (const [k, v] of Object.entries(seen)) labels.set(k, { values: new Set([v]) });
    };

    for (const lease of [...this.leases.values()]) {
      const seen = obs.leases.get(lease.id);
      const what = `lease ${lease.id}`;
      if (lease.phase === 'deleted') {
        if (seen) f.wrong.push(`${what}: deleted, and back`);
        this.leases.delete(lease.id);
        continue;
      }
      if (!seen) {
        if (lease.phase === 'present') f.lost.push(`${what}: acknowledged, missing`);
        lease.phase = 'deleted';
        continue;
      }
      if (JSON.stringify(sortedRecord(seen.labels)) !== JSON.stringify(sortedRecord(lease.labels))) {
        (lease.phase === 'creating' ? f.halfVisible : f.wrong).push(`${what}: labels ${JSON.stringify(seen.labels)}, created with ${JSON.stringify(lease.labels)}`);
      }
      for (const [digest, state] of lease.resources) {
        if (state === 'present' && !seen.content.has(digest)) f.lost.push(`${what}: acknowledged resource ${digest} missing`);
      }
      for (const digest of seen.content) if (!lease.resources.has(digest)) f.wrong.push(`${what}: unexpected resource ${digest}`);
      lease.phase = 'present';
      for (const digest of [...lease.resources.keys()]) {
        if (seen.content.has(digest)) lease.resources.set(digest, 'present');
        else lease.resources.delete(digest);
      }
    }
    for (const id of obs.leases.keys()) if (!this.leases.has(id)) f.wrong.push(`lease ${id}: nobody asked for it`);

    for (const blob of [...this.blobs.values()]) {
      const seen = obs.blobs.get(blob.digest);
      const what = `blob ${blob.digest.slice(0, 19)} (${blob.size} B)`;
      if (blob.phase === 'deleted') {
        if (seen) f.wrong.push(`${what}: deleted, and back`);
        this.blobs.delete(blob.digest);
        continue;
      }
      if (!seen) {
        if (blob.phase === 'present' && this.holds(blob)) f.lost.push(`${what}: ${blob.origin}, acknowledged${blob.root ? ' (gc.root)' : ` (held by lease ${[...blob.leases].join(', ')})`}, missing`);
        this.blobs.delete(blob.digest); // collected, never committed, or deleted: gone either way
        continue;
      }
      if (!obs.blobFiles.has(blob.digest)) f.wrong.push(`${what}: listed, but its blob file is gone`);
      if (seen.size !== blob.size) f.wrong.push(`${what}: listed with size ${seen.size}`);
      checkLabels(what, blob.labels, seen.labels, blob.phase === 'creating' ? f.halfVisible : f.lost);
      blob.phase = 'present';
      if (seen.labels['containerd.io/gc.root'] !== undefined) blob.root = true;
      settleLabels(blob.labels, seen.labels);
      for (const [id, lease] of this.leases) if (lease.resources.get(blob.digest) === 'present') blob.leases.add(id);
    }
    for (const digest of obs.blobs.keys()) if (!this.blobs.has(digest)) f.wrong.push(`blob ${digest}: listed, nobody committed it`);

    for (const ns of [...this.namespaces.values()]) {
      const seen = obs.namespaces.get(ns.name);
      const what = `namespace ${ns.name}`;
      if (ns.phase === 'deleted') {
        if (seen) f.wrong.push(`${what}: deleted, and back`);
        this.namespaces.delete(ns.name);
        continue;
      }
      if (!seen) {
        if (ns.phase === 'present') f.lost.push(`${what}: acknowledged, missing`);
        this.namespaces.delete(ns.name);
        continue;
      }
      checkLabels(what, ns.labels, seen, ns.phase === 'creating' ? f.halfVisible : f.lost);
      ns.phase = 'present';
      settleLabels(ns.labels, seen);
    }
    for (const name of obs.namespaces.keys()) if (!this.namespaces.has(name)) f.wrong.push(`namespace ${name}: nobody asked for it`);

    for (const r of [...this.blobs.values(), ...this.leases.values(), ...this.namespaces.values()]) r.busy = false;
    return f;
  }
}

function sortedRecord(r: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(r).sort(([a], [b]) => a.localeCompare(b));
}
