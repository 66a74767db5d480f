// Phase c: berthd with root and state on a 64 MiB tmpfs, filled through content ingests and metadata writes until
// the disk is full. containerd answers ENOSPC as codes.Unknown with the OS error's text ("no space left on device":
// errdefs.ToGRPC passes unclassified errors through, and grpc-go makes them Unknown); it keeps serving reads, loses
// nothing it acknowledged, and writes again once space is freed. So must berthd.
import { join } from 'node:path';
import { ServiceNames, StatusCode } from '@berth/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { budget } from '../src/budget.js';
import { sha256, writeBlob } from '../src/content.js';
import { hasCtr, hasRoot, PhaseDaemon } from '../src/daemon.js';
import { CallError, codeName, RawGrpc } from '../src/raw-grpc.js';
import { Rng } from '../src/rng.js';
import { newRow, writeRow } from '../src/summary.js';
import { fillUp, mountTmpfs, removeFile, type Tmpfs } from '../src/tmpfs.js';
import { readBack } from '../src/workload.js';

const NS = 'chaos';
const KiB = 1024;
const ENOSPC = /no space left on device/i;

const unmet = !hasRoot() ? 'needs root to mount a tmpfs' : !hasCtr() ? `needs Debian's ctr` : '';

describe('c: disk full', () => {
  const row = newRow('c', 'disk full');
  let fs: Tmpfs | undefined;
  let skipReason = '';
  let phase: PhaseDaemon | undefined;
  let g: RawGrpc | undefined;
  const blobs = new Map<string, Record<string, string>>(); // acknowledged commits and their labels
  const leases = new Set<string>();
  const namespaces = new Set<string>();
  const writeErrors: { op: string; code: string; message: string }[] = [];
  let enospcSeen = 0;
  let diedWhenFull = '';
  let upWhenFull: string[] = [];
  let afterFree: string[] = [];
  let lostItems: string[] = [];

  /** One write: acknowledged (recorded) or refused (the error recorded). */
  const attempt = async (op: string, fn: () => Promise<unknown>, onAck: () => void): Promise<boolean> => {
    row.cases++;
    try {
      await fn();
      onAck();
      return true;
    } catch (err) {
      const code = err instanceof CallError ? codeName(err.code) : 'ERROR';
      const message = err instanceof CallError ? err.details : (err as Error).message;
      writeErrors.push({ op, code, message });
      if (ENOSPC.test(message)) enospcSeen++;
      return false;
    }
  };

  let n = 0;
  const rng = new Rng(inject('chaosSeed') + 3);
  const commit = (size: number) => {
    const data = rng.bytes(size);
    const labels = { 'containerd.io/gc.root': 'chaos', n: String(n) };
    return attempt(`commit ${size} B`, () => writeBlob(g!, `fill-${n++}`, data, { namespace: NS, labels, timeoutMs: 15_000 }), () => blobs.set(sha256(data), labels));
  };
  const createLease = () => {
    const id = `fill-lease-${n++}`;
    return attempt('lease create', () => g!.call(ServiceNames.Leases, 'Create', { id, labels: { pad: 'p'.repeat(3000) } }, { namespace: NS }), () => leases.add(id));
  };
  const createNamespace = () => {
    const name = `chaos-fill-${n++}`;
    return attempt('namespace create', () => g!.call(ServiceNames.Namespaces, 'Create', { namespace: { name, labels: { pad: 'p'.repeat(3000) } } }, { namespace: null }), () => namespaces.add(name));
  };
  const relabel = () => {
    const digest = [...blobs.keys()][0];
    if (!digest) return Promise.resolve(false);
    const value = `v${n++}`;
    return attempt('label update', () => g!.call(ServiceNames.Content, 'Update', { info: { digest, labels: { extra: value } }, update_mask: { paths: ['labels.extra'] } }, { namespace: NS }), () => {
      blobs.get(digest)!.extra = value;
    });
  };

  /** What the daemon shows against what it acknowledged: every blob listed with its labels and reading back right. */
  const lostNow = async (): Promise<string[]> => {
    const out: string[] = [];
    const listed = new Map<string, Record<string, string>>();
    for (const r of await g!.stream<{ info: { digest: string; labels: Record<string, string> }[] }>(ServiceNames.Content, 'List', [{}], { namespace: NS })) {
      for (const info of r.info) listed.set(info.digest, info.labels);
    }
    for (const [digest, labels] of blobs) {
      const seen = listed.get(digest);
      if (!seen) out.push(`blob ${digest}: acknowledged, missing`);
      else if (JSON.stringify(Object.entries(seen).sort()) !== JSON.stringify(Object.entries(labels).sort())) out.push(`blob ${digest}: labels ${JSON.stringify(seen)}, acknowledged ${JSON.stringify(labels)}`);
    }
    for (const bad of await readBack(phase!.address, [...blobs.keys()].filter((d) => listed.has(d)), NS)) out.push(`blob ${bad}`);
    const { leases: ls } = await g!.call<{ leases: { id: string }[] }>(ServiceNames.Leases, 'List', {}, { namespace: NS });
    for (const id of leases) if (!ls.some((l) => l.id === id)) out.push(`lease ${id}: acknowledged, missing`);
    const { namespaces: nss } = await g!.call<{ namespaces: { name: string }[] }>(ServiceNames.Namespaces, 'List', {}, { namespace: null });
    for (const name of namespaces) if (!nss.some((x) => x.name === name)) out.push(`namespace ${name}: acknowledged, missing`);
    return out;
  };

  beforeAll(async () => {
    try {
      if (unmet) throw new Error(unmet);
      fs = await mountTmpfs(budget.tmpfsMiB);
    } catch (err) {
      skipReason = (err as Error).message;
      row.notes.push(`skipped: ${skipReason}`);
      process.stderr.write(`c: disk full: skipped: ${skipReason}\n`);
      return;
    }
    phase = await PhaseDaemon.start({ dir: fs.path });
    row.rssBeforeMiB = phase.memory()?.rssMiB;
    g = new RawGrpc(phase.address, { namespace: NS, timeoutMs: 15_000 });
    // Some acknowledged state while there is room.
    for (let i = 0; i < 6; i++) await commit(256 * KiB);
    await createLease();
    await createNamespace();
    // Ballast leaves 3 MiB; the API fills that (content first, then metadata), then ballast takes the last pages.
    await fillUp(fs, join(fs.path, 'ballast-1'), 3 << 20);
    for (let i = 0; i < 12 && phase.daemon.alive; i++) if (!(await commit(512 * KiB))) break;
    await fillUp(fs, join(fs.path, 'ballast-2'), 0);
    for (const op of [commit.bind(null, 64 * KiB), createLease, createNamespace, relabel, commit.bind(null, 1), createLease, createNamespace, relabel]) {
      if (!phase.daemon.alive) break;
      await op();
    }
    await new Promise((r) => setTimeout(r, 300)); // a crash after the last answer shows here
    if (!phase.daemon.alive) diedWhenFull = `berthd exited on the full disk:\n${phase.daemon.logs.slice(-1500)}`;
    row.notes.push(`write errors: ${writeErrors.length} (${enospcSeen} ENOSPC); acknowledged: ${blobs.size} blobs, ${leases.size} leases, ${namespaces.size} namespaces`);

    // While full: up, answering, serving reads of everything it acknowledged.
    if (!diedWhenFull) {
      upWhenFull = (await phase.responsive()) ? [] : ['ctr version failed on the full disk'];
      upWhenFull.push(...(await lostNow().catch((err: Error) => [`reads failed on the full disk: ${err.message}`])));
    }

    // Free the space; a daemon that died is started again, so the rest is still checked.
    await removeFile(join(fs.path, 'ballast-1'));
    await removeFile(join(fs.path, 'ballast-2'));
    if (!phase.daemon.alive) {
      await phase.revive();
      g.close();
      g = new RawGrpc(phase.address, { namespace: NS, timeoutMs: 15_000 });
    }
    const before = writeErrors.length;
    const ok = [await commit(1 << 20), await createLease(), await createNamespace(), await relabel()];
    afterFree = ok.every(Boolean) ? [] : writeErrors.slice(before).map((e) => `${e.op} after freeing space: ${e.code} ${e.message.slice(0, 200)}`);
    // And durably: after a restart everything acknowledged is still there.
    lostItems = await lostNow();
    await phase.restart();
    g.close();
    g = new RawGrpc(phase.address, { namespace: NS, timeoutMs: 15_000 });
    lostItems.push(...(await lostNow()).map((x) => `after a restart: ${x}`));
    row.lost = lostItems.length;
  });

  afterAll(async () => {
    row.stallMs = phase?.worstStallMs();
    row.rssAfterMiB = phase?.memory()?.rssMiB;
    row.hwmMiB = phase?.peakRssMiB();
    row.failures = (diedWhenFull ? 1 : 0) + upWhenFull.length + afterFree.length + lostItems.length + writeErrors.filter((e) => e.code !== 'UNKNOWN' || !ENOSPC.test(e.message)).length;
    writeRow(inject('chaosResultsDir'), row);
    g?.close();
    await phase?.dispose();
    await fs?.unmount();
  });

  it('answers writes on a full disk with Unknown: no space left on device, as containerd', (ctx) => {
    if (skipReason) ctx.skip();
    expect(enospcSeen, 'the disk filled up and some write said so').toBeGreaterThan(0);
    const other = writeErrors.filter((e) => e.code !== codeName(StatusCode.UNKNOWN) || !ENOSPC.test(e.message));
    const lines = other.map((e) => `${e.op}: ${e.code} ${e.message.slice(0, 200)}`);
    expect(lines, lines.join('\n')).toEqual([]);
  });

  it('stays up and serves reads on a full disk', (ctx) => {
    if (skipReason) ctx.skip();
    expect(diedWhenFull, diedWhenFull).toBe('');
    expect(upWhenFull, upWhenFull.join('\n')).toEqual([]);
  });

  it('writes again once space is freed', (ctx) => {
    if (skipReason) ctx.skip();
    expect(afterFree, afterFree.join('\n')).toEqual([]);
  });

  it('loses nothing it acknowledged, before and after a restart', (ctx) => {
    if (skipReason) ctx.skip();
    expect(lostItems, lostItems.join('\n')).toEqual([]);
  });
});
