// What the task tests share: a berthd with the tiny test image imported into a namespace of the test's own, ctr runs
// whose FIFOs go to a directory of the test's own (`--fifo-dir`), counts of everything a task leaves on the host
// (mounts, shims, cgroups, FIFOs, bundles, runc state, shim sockets), and a teardown that removes all of it even when
// a test failed half way (through ctr first, then by hand: shims by their pid, mounts, cgroups).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MNT_DETACH, umount2 } from '@berth/sys';
import { buildImage } from '../../../tools/images/index.mjs';
import { ctrTable, expectOk, hasCtr, hasRoot, run, startBerthd, type Berthd, type RunOptions, type RunResult } from './harness.js';

export const SHIM = '/usr/bin/containerd-shim-runc-v2';
export const hasRunc = (): boolean => existsSync('/usr/bin/runc') && existsSync(SHIM);
export const hasCrun = (): boolean => existsSync('/usr/bin/crun');
export const hasScript = (): boolean => existsSync('/usr/bin/script');

/**
 * Why crun cannot run a container on this host, if it cannot: crun refuses a hybrid cgroup layout whose unified
 * hierarchy has controllers (cgroup v1 plus, say, hugetlb on /sys/fs/cgroup/unified).
 */
export function crunRefusal(): string | undefined {
  try {
    const controllers = readFileSync('/sys/fs/cgroup/unified/cgroup.controllers', 'utf8').trim();
    if (controllers) return `cgroups in hybrid mode with controllers on the unified hierarchy (${controllers})`;
  } catch {
    // pure v1 or pure v2
  }
  return undefined;
}
/** Everything a test that runs containers needs; the reason when something is missing. */
export const taskTestsSkipReason = (): string | undefined =>
  !hasRoot() ? 'needs root' : !hasCtr() ? 'needs /usr/bin/ctr' : !hasRunc() ? `needs runc and ${SHIM}` : undefined;

export const IMAGE = 'test/tiny:latest';
/** runtime-runc's runc root (containerd's would be /run/containerd/runc): `<berthd state>/runc/<ns>/<id>`. */
const runcRoot = (daemonDir: string): string => join(daemonDir, 'state', 'runc');
/** Where the runc shim puts its socket, whatever the daemon's state dir (`/run/containerd/s/<sha256(address/ns/id)>`). */
const SHIM_SOCKETS = '/run/containerd/s';
const CGROUP_ROOT = '/sys/fs/cgroup';

export interface TaskFixture {
  readonly daemon: Berthd;
  readonly ns: string;
  readonly work: string;
  /** The FIFO directory every ctr run/exec of this fixture uses. */
  readonly fifoDir: string;
  /** The image, as an OCI archive ctr imports. */
  readonly archive: string;
  /** Container ids the test used (teardown removes whatever is left of them). */
  readonly ids: Set<string>;
  ctr(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** `ctr run --fifo-dir <fifoDir> <flags> IMAGE id cmd...` */
  run(flags: readonly string[], id: string, cmd: readonly string[], options?: RunOptions): Promise<RunResult>;
  tasks(): Promise<Record<string, string>[]>;
  /** Restarts berthd on the same dirs (SIGKILL first when `kill`), keeping the fixture's namespace and FIFOs. */
  restart(kill?: boolean): Promise<void>;
  close(): Promise<void>;
}

/** Starts berthd, imports the tiny image into a fresh namespace (`<prefix>-<pid>`) and hands back the fixture. */
export async function startTaskFixture(prefix: string, options: { config?: string } = {}): Promise<TaskFixture> {
  const work = await mkdtemp(join(tmpdir(), `berth-${prefix}-`));
  const fifoDir = join(work, 'fifo');
  await mkdir(fifoDir);
  const image = await buildImage('tiny', join(work, 'tiny'));
  const archive = join(work, 'tiny.tar');
  expectOk(await run('tar', ['-cf', archive, '-C', image.dir, 'oci-layout', 'index.json', 'blobs']), 'tar of the tiny layout');
  const ns = `${prefix}-${process.pid}`;
  let daemon = await startBerthd(options.config ? { config: options.config } : {});
  const ids = new Set<string>();
  const fixture: TaskFixture = {
    get daemon() {
      return daemon;
    },
    ns,
    work,
    fifoDir,
    archive,
    ids,
    ctr: (args, o) => daemon.ctr(args, { namespace: ns, timeoutMs: 60_000, ...o }),
    run: (flags, id, cmd, o) => {
      ids.add(id);
      return daemon.ctr(['run', '--fifo-dir', fifoDir, ...flags, IMAGE, id, ...cmd], { namespace: ns, timeoutMs: 60_000, ...o });
    },
    tasks: async () => ctrTable(expectOk(await daemon.ctr(['tasks', 'ls'], { namespace: ns }), 'ctr tasks ls').stdout),
    restart: async (kill = true) => {
      if (kill) await daemon.kill('SIGKILL');
      else await daemon.stop({ keepDir: true });
      daemon = await startBerthd({ dir: daemon.dir, ...(options.config ? { config: options.config } : {}) });
    },
    close: async () => {
      try {
        await removeTasks(fixture);
      } finally {
        const dir = daemon.dir;
        await daemon.stop();
        await forceCleanup(ns, dir);
        await rm(dir, { recursive: true, force: true });
        await rm(work, { recursive: true, force: true });
      }
    },
  };
  try {
    const imported = expectOk(await fixture.ctr(['images', 'import', '--base-name', 'test/tiny', archive]), 'ctr images import');
    if (!imported.stdout.includes(IMAGE)) throw new Error(`ctr images import did not import ${IMAGE}: ${imported.stdout}`);
  } catch (err) {
    await daemon.stop();
    await rm(work, { recursive: true, force: true });
    throw err;
  }
  return fixture;
}

/** Kills and deletes every task of the fixture's namespace and removes its containers, through ctr. */
async function removeTasks(fx: TaskFixture): Promise<void> {
  if (!fx.daemon.alive) return;
  const listed = await fx.ctr(['tasks', 'ls']);
  const tasks = listed.code === 0 ? ctrTable(listed.stdout) : [];
  for (const t of tasks) {
    if (t.STATUS !== 'STOPPED') await fx.ctr(['tasks', 'kill', '-a', '-s', 'SIGKILL', t.TASK!]);
  }
  for (const t of tasks) {
    for (let i = 0; i < 50; i++) {
      const r = await fx.ctr(['tasks', 'rm', '-f', t.TASK!]);
      if (r.code === 0 || /not found/.test(r.stderr)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  const containers = await fx.ctr(['containers', 'ls', '-q']);
  for (const id of containers.code === 0 ? containers.stdout.split('\n').filter(Boolean) : []) await fx.ctr(['containers', 'rm', id]);
}

/** The shim processes of a namespace: pid -> command line. */
export function shimsOf(ns: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string[];
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!cmdline[0]?.includes('containerd-shim')) continue;
    const at = cmdline.indexOf('-namespace');
    if (at >= 0 && cmdline[at + 1] === ns) out.set(Number(entry), cmdline.join(' ').trim());
  }
  return out;
}

/** Mount points of this host under `dir`. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((target) => target === dir || target.startsWith(`${dir}/`));
}

/** Cgroup directories of a namespace (ctr puts a container at `/<ns>/<id>`), on cgroup v1 and v2. */
export function cgroupsOf(ns: string): string[] {
  const found: string[] = [];
  const v2 = existsSync(join(CGROUP_ROOT, 'cgroup.controllers'));
  const roots = v2 ? [CGROUP_ROOT] : readdirSync(CGROUP_ROOT).map((c) => join(CGROUP_ROOT, c));
  for (const root of roots) {
    const dir = join(root, ns);
    if (!existsSync(dir)) continue;
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) found.push(join(dir, e.name));
    } catch {
      // a controller mounted elsewhere or a symlink to another (cpu -> cpu,cpuacct): nothing of ours to count
    }
  }
  return [...new Set(found)];
}

const listDir = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

/** The runc shim's socket of one container of this daemon. */
export const shimSocket = (daemon: Berthd, ns: string, id: string): string =>
  join(SHIM_SOCKETS, createHash('sha256').update(`${daemon.address}/${ns}/${id}`).digest('hex'));

export interface LeakCounts {
  readonly mounts: readonly string[];
  readonly shims: readonly string[];
  readonly cgroups: readonly string[];
  readonly fifos: readonly string[];
  readonly bundles: readonly string[];
  readonly runcState: readonly string[];
  readonly shimSockets: readonly string[];
}

/** Everything of the fixture's namespace that a task leaves on the host. */
export function leakCounts(fx: TaskFixture): LeakCounts {
  const fifos: string[] = [];
  for (const d of listDir(fx.fifoDir)) {
    const sub = join(fx.fifoDir, d);
    fifos.push(sub, ...listDir(sub).map((f) => join(sub, f)));
  }
  return {
    mounts: mountsUnder(fx.daemon.dir),
    shims: [...shimsOf(fx.ns).values()],
    cgroups: cgroupsOf(fx.ns),
    fifos,
    bundles: listDir(join(fx.daemon.state, 'io.containerd.runtime.v2.task', fx.ns)),
    runcState: listDir(join(runcRoot(fx.daemon.dir), fx.ns)),
    shimSockets: [...fx.ids].map((id) => shimSocket(fx.daemon, fx.ns, id)).filter((p) => existsSync(p)),
  };
}

/**
 * The last resort after a failed test: SIGKILL the namespace's shims (and their containers' processes, which die
 * with the init's pid namespace), unmount what is left under the daemon's dir, remove the namespace's cgroups and
 * runc state. Processes here were started for this test only (found by the test's own namespace).
 */
async function forceCleanup(ns: string, dir: string): Promise<void> {
  const stateRoot = join(runcRoot(dir), ns);
  for (const id of listDir(stateRoot)) {
    try {
      const state = JSON.parse(readFileSync(join(stateRoot, id, 'state.json'), 'utf8')) as { init_process_pid?: number };
      if (state.init_process_pid) process.kill(state.init_process_pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const pid of shimsOf(ns).keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  for (const target of mountsUnder(dir).reverse()) {
    try {
      await umount2(target, MNT_DETACH);
    } catch {
      // already unmounted
    }
  }
  for (const cg of cgroupsOf(ns)) {
    try {
      rmdirSync(cg);
    } catch {
      // still has a process for a moment, or never ours
    }
  }
  for (const root of existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) ? [CGROUP_ROOT] : readdirSync(CGROUP_ROOT).map((c) => join(CGROUP_ROOT, c))) {
    try {
      rmdirSync(join(root, ns));
    } catch {
      // absent or not empty
    }
  }
  await rm(stateRoot, { recursive: true, force: true });
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes; then throws with `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
