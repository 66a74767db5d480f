// The SIGKILL loop's mixed workload: concurrent workers committing random blobs (gRPC Write with labels, under
// leases, and `ctr content ingest` + `ctr content label`), changing labels (ctr and Content.Update), deleting blobs,
// creating, filling and deleting leases (with `sync`, which forces a collection), and creating, labelling and
// removing namespaces. Every request is entered in the ledger before it is sent and marked acknowledged only when
// the daemon answered it, so whatever the kill interrupts stays "unacknowledged".
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ServiceNames } from '@berth/api';
import { hashFile, sha256, writeBlob } from './content.js';
import { CTR } from './daemon.js';
import type { Ledger, Observed } from './ledger.js';
import { RawGrpc } from './raw-grpc.js';
import type { Rng } from './rng.js';

export const WORKLOAD_NS = 'chaos';
export const NS_PREFIX = 'chaos-n';
const GC_ROOT = 'containerd.io/gc.root';

const OPS = {
  commit: 28,
  leaseCommit: 8,
  ctrIngest: 8,
  relabel: 18,
  deleteBlob: 5,
  createLease: 7,
  addResource: 6,
  deleteLease: 6,
  createNamespace: 6,
  labelNamespace: 4,
  deleteNamespace: 4,
} as const;

export class Workload {
  private stopping = false;
  private readonly abort = new AbortController();
  private readonly g: RawGrpc;
  private counter = 0;
  readonly counts = { sent: 0, acknowledged: 0 };

  constructor(
    private readonly address: string,
    private readonly ledger: Ledger,
    private readonly rng: Rng,
    private readonly tag: string,
  ) {
    this.g = new RawGrpc(address, { namespace: WORKLOAD_NS, timeoutMs: 20_000 });
  }

  /** Runs `workers` loops of random operations until stop(). */
  async run(workers: number): Promise<void> {
    await Promise.all(Array.from({ length: workers }, () => this.loop()));
  }

  /** Stops issuing operations and kills the ctr processes in flight (their operations stay unacknowledged). */
  stop(): void {
    this.stopping = true;
    this.abort.abort();
    this.g.close();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const op = this.rng.weighted(OPS);
      this.counts.sent++;
      try {
        if (await this[op]()) {
          this.counts.acknowledged++;
          this.ledger.ack();
        }
      } catch {
        // Unacknowledged: the ledger keeps it pending. A daemon that is gone fails every call at once; pause so the
        // loop does not spin until stop() arrives.
        if (!this.stopping) await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private name(kind: string): string {
    return `${kind}-${this.tag}-${this.counter++}`;
  }

  private blobSize(): number {
    const r = this.rng.next();
    if (r < 0.7) return this.rng.int(1, 64 << 10);
    if (r < 0.95) return this.rng.int(64 << 10, 1 << 20);
    return this.rng.int(1 << 20, 4 << 20);
  }

  private ctr(args: readonly string[], input?: Buffer, namespace = WORKLOAD_NS): Promise<boolean> {
    return new Promise((resolve) => {
      const child = spawn(CTR, ['--address', this.address, '--namespace', namespace, ...args], {
        stdio: ['pipe', 'ignore', 'ignore'],
        signal: this.abort.signal,
        killSignal: 'SIGKILL',
      });
      child.once('error', () => resolve(false));
      child.once('close', (code) => resolve(code === 0));
      child.stdin.on('error', () => undefined);
      child.stdin.end(input ?? '');
    });
  }

  private idle<T extends { busy: boolean; phase: string }>(items: Iterable<T>, filter: (t: T) => boolean = () => true): T | undefined {
    return this.rng.pick([...items].filter((t) => !t.busy && t.phase === 'present' && filter(t)));
  }

  // Each operation returns true when the daemon acknowledged it.

  private async commit(): Promise<boolean> {
    const data = this.rng.bytes(this.blobSize());
    const labels: Record<string, string> = { [GC_ROOT]: 'chaos', chaos: 'v0' };
    for (let i = this.rng.int(0, 3); i > 0; i--) labels[`k${i}`] = `x${this.rng.int(0, 99)}`;
    const blob = this.ledger.committing(sha256(data), data.length, labels);
    await writeBlob(this.g, this.name('commit'), data, { labels });
    blob.phase = 'present';
    blob.root = true;
    blob.busy = false;
    return true;
  }

  private async leaseCommit(): Promise<boolean> {
    const lease = this.idle(this.ledger.leases.values());
    if (!lease) return false;
    lease.busy = true;
    const data = this.rng.bytes(this.blobSize());
    const labels = { chaos: 'v0' };
    const blob = this.ledger.committing(sha256(data), data.length, labels, lease.id);
    await writeBlob(this.g, this.name('leased'), data, { labels, lease: lease.id });
    blob.phase = 'present';
    blob.leases.add(lease.id);
    blob.busy = false;
    lease.resources.set(blob.digest, 'present');
    lease.busy = false;
    return true;
  }

  private async ctrIngest(): Promise<boolean> {
    const data = this.rng.bytes(this.blobSize());
    const blob = this.ledger.committing(sha256(data), data.length, {}, undefined, 'ingested by ctr');
    if (!(await this.ctr(['content', 'ingest', this.name('ingest')], data))) return false;
    blob.phase = 'present'; // but not held by anything until the label below: a collection may take it
    this.ledger.relabel(blob.labels, GC_ROOT, 'chaos');
    this.ledger.relabel(blob.labels, 'chaos', 'v0');
    if (!(await this.ctr(['content', 'label', blob.digest, `${GC_ROOT}=chaos`, 'chaos=v0']))) return false;
    this.ledger.settleLabel(blob.labels, GC_ROOT, 'chaos');
    this.ledger.settleLabel(blob.labels, 'chaos', 'v0');
    blob.root = true;
    blob.busy = false;
    return true;
  }

  private async relabel(): Promise<boolean> {
    const blob = this.idle(this.ledger.blobs.values());
    if (!blob) return false;
    blob.busy = true;
    const key = this.rng.next() < 0.5 ? 'chaos' : `k${this.rng.int(1, 4)}`;
    const value = key !== 'chaos' && this.rng.next() < 0.2 ? undefined : `v${this.counter++}`;
    this.ledger.relabel(blob.labels, key, value);
    const ok =
      this.rng.next() < 0.5
        ? await this.ctr(['content', 'label', blob.digest, `${key}=${value ?? ''}`])
        : await this.g
            .call(ServiceNames.Content, 'Update', { info: { digest: blob.digest, labels: value === undefined ? {} : { [key]: value } }, update_mask: { paths: [`labels.${key}`] } })
            .then(() => true);
    if (!ok) return false;
    this.ledger.settleLabel(blob.labels, key, value);
    blob.busy = false;
    return true;
  }

  private async deleteBlob(): Promise<boolean> {
    const blob = this.idle(this.ledger.blobs.values(), (b) => b.root);
    if (!blob) return false;
    blob.busy = true;
    blob.phase = 'deleting';
    await this.g.call(ServiceNames.Content, 'Delete', { digest: blob.digest });
    blob.phase = 'deleted';
    return true;
  }

  private async createLease(): Promise<boolean> {
    const id = this.name('lease');
    const labels = { team: 'chaos', n: String(this.counter) };
    const lease = this.ledger.creatingLease(id, labels);
    const ok =
      this.rng.next() < 0.5
        ? await this.ctr(['leases', 'create', '--id', id, '--expires', '0', ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)])
        : await this.g.call(ServiceNames.Leases, 'Create', { id, labels }).then(() => true);
    if (!ok) return false;
    lease.phase = 'present';
    lease.busy = false;
    return true;
  }

  private async addResource(): Promise<boolean> {
    const lease = this.idle(this.ledger.leases.values());
    // Only a blob that is held already: adding a lease resource does not bring back content a collection took, and
    // an unheld blob may be gone by the time the resource is added.
    const blob = this.idle(this.ledger.blobs.values(), (b) => this.ledger.holds(b) && !lease?.resources.has(b.digest));
    if (!lease || !blob) return false;
    lease.busy = true;
    lease.resources.set(blob.digest, 'adding');
    await this.g.call(ServiceNames.Leases, 'AddResource', { id: lease.id, resource: { id: blob.digest, type: 'content' } });
    lease.resources.set(blob.digest, 'present');
    blob.leases.add(lease.id);
    lease.busy = false;
    return true;
  }

  private async deleteLease(): Promise<boolean> {
    const lease = this.idle(this.ledger.leases.values());
    if (!lease) return false;
    lease.busy = true;
    lease.phase = 'deleting';
    // `sync` waits for a collection: the forced GC of this workload.
    const sync = this.rng.next() < 0.5;
    const ok =
      this.rng.next() < 0.5
        ? await this.ctr(['leases', 'rm', ...(sync ? ['--sync'] : []), lease.id])
        : await this.g.call(ServiceNames.Leases, 'Delete', { id: lease.id, sync }).then(() => true);
    if (!ok) return false;
    lease.phase = 'deleted';
    return true;
  }

  private async createNamespace(): Promise<boolean> {
    const name = this.name(NS_PREFIX);
    const labels = { team: 'chaos', n: String(this.counter) };
    const ns = this.ledger.creatingNamespace(name, labels);
    const ok =
      this.rng.next() < 0.5
        ? await this.ctr(['namespaces', 'create', name, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)])
        : await this.g.call(ServiceNames.Namespaces, 'Create', { namespace: { name, labels } }, { namespace: null }).then(() => true);
    if (!ok) return false;
    ns.phase = 'present';
    ns.busy = false;
    return true;
  }

  private async labelNamespace(): Promise<boolean> {
    const ns = this.idle(this.ledger.namespaces.values());
    if (!ns) return false;
    ns.busy = true;
    const value = `v${this.counter++}`;
    this.ledger.relabel(ns.labels, 'team', value);
    if (!(await this.ctr(['namespaces', 'label', ns.name, `team=${value}`]))) return false;
    this.ledger.settleLabel(ns.labels, 'team', value);
    ns.busy = false;
    return true;
  }

  private async deleteNamespace(): Promise<boolean> {
    const ns = this.idle(this.ledger.namespaces.values());
    if (!ns) return false;
    ns.busy = true;
    ns.phase = 'deleting';
    if (!(await this.ctr(['namespaces', 'rm', ns.name]))) return false;
    ns.phase = 'deleted';
    return true;
  }
}

export interface Observation extends Observed {
  /** Blob files whose bytes do not hash to their name. */
  readonly corrupt: readonly string[];
  readonly rehashed: number;
}

/**
 * The daemon's state as the ledger needs it, and every blob file on disk re-hashed. The files are listed before the
 * records: a commit writes its file before its record and a collection removes the record first, so a record seen
 * afterwards whose file was not there is a real torn blob, not a collection running meanwhile. A file a collection
 * removes between listing and hashing is skipped.
 */
export async function observe(address: string, root: string): Promise<Observation> {
  const dir = join(root, 'io.containerd.content.v1.content', 'blobs', 'sha256');
  const files = await readdir(dir).catch(() => [] as string[]);
  const blobFiles = new Set(files.map((name) => `sha256:${name}`));
  const g = new RawGrpc(address, { namespace: WORKLOAD_NS, timeoutMs: 20_000 });
  try {
    const blobs = new Map<string, { size: number; labels: Record<string, string> }>();
    for (const r of await g.stream<{ info: { digest: string; size: number; labels: Record<string, string> }[] }>(ServiceNames.Content, 'List', [{}])) {
      for (const info of r.info) blobs.set(info.digest, { size: info.size, labels: info.labels });
    }
    const leases = new Map<string, { labels: Record<string, string>; content: Set<string> }>();
    const { leases: list } = await g.call<{ leases: { id: string; labels: Record<string, string> }[] }>(ServiceNames.Leases, 'List', {});
    for (const l of list) {
      const { resources } = await g.call<{ resources: { id: string; type: string }[] }>(ServiceNames.Leases, 'ListResources', { id: l.id });
      leases.set(l.id, { labels: l.labels, content: new Set(resources.filter((r) => r.type === 'content').map((r) => r.id)) });
    }
    const namespaces = new Map<string, Record<string, string>>();
    const { namespaces: nsList } = await g.call<{ namespaces: { name: string; labels: Record<string, string> }[] }>(ServiceNames.Namespaces, 'List', {}, { namespace: null });
    for (const ns of nsList) if (ns.name.startsWith(NS_PREFIX)) namespaces.set(ns.name, ns.labels);

    const corrupt: string[] = [];
    let rehashed = 0;
    for (const name of files) {
      const digest = `sha256:${name}`;
      const actual = await hashFile(join(dir, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined; // collected meanwhile
        throw err;
      });
      if (actual === undefined) continue;
      rehashed++;
      if (actual !== digest) corrupt.push(digest);
    }
    return { blobs, blobFiles, leases, namespaces, corrupt, rehashed };
  } finally {
    g.close();
  }
}

/** Reads blobs back through Content.Read; returns what is wrong: unreadable, or bytes that do not hash to the digest. */
export async function readBack(address: string, digests: readonly string[], namespace = WORKLOAD_NS): Promise<string[]> {
  const g = new RawGrpc(address, { namespace, timeoutMs: 20_000 });
  const bad: string[] = [];
  try {
    for (const digest of digests) {
      try {
        const parts = await g.stream<{ offset: number; data: Buffer }>(ServiceNames.Content, 'Read', [{ digest }]);
        if (sha256(Buffer.concat(parts.map((p) => p.data))) !== digest) bad.push(`${digest} reads back wrong`);
      } catch (err) {
        bad.push(`${digest} unreadable: ${(err as Error).message.slice(0, 200)}`);
      }
    }
  } finally {
    g.close();
  }
  return bad;
}
