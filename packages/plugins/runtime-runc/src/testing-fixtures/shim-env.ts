// What the real-shim tests share: a busybox rootfs, an OCI spec like `runc spec`'s, stdio FIFOs read the way a
// client reads them, an events server on `<grpc address>.ttrpc`, and a teardown that finds and removes whatever a
// test left (shims, runc containers, mounts, cgroups) even when the test failed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, existsSync, openSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageCodec, TtrpcServer, typeNameOfUrl } from '@berth/api';
import { type AnyValue, type EventPublisher, type Logger, nullLogger } from '@berth/core';
import { mkfifo } from '@berth/sys';
import { runtimeRuncConfigDefaults, type RuntimeRuncConfig } from '../config.js';
import { ShimRuntime } from '../shim-runtime.js';

export const SHIM = '/usr/bin/containerd-shim-runc-v2';
export const BUSYBOX = '/bin/busybox';

/** Why the real-shim tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (runc creates namespaces, mounts and cgroups)';
  for (const bin of [SHIM, BUSYBOX]) if (!existsSync(bin)) return `needs ${bin}`;
  if (spawnSync('runc', ['--version']).status !== 0) return 'needs runc on PATH';
  return undefined;
}

export const hasCrun = (): boolean => spawnSync('crun', ['--version']).status === 0;

/**
 * Why crun cannot run a container on this host, if it cannot: crun refuses a hybrid cgroup layout whose
 * unified hierarchy has controllers (this machine: v1 plus hugetlb on /sys/fs/cgroup/unified).
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

const APPLETS = ['sh', 'echo', 'sleep', 'cat', 'true', 'false', 'ls', 'env', 'kill', 'dd', 'head', 'yes'];

/** A directory holding busybox-static and its applets as symlinks. */
export async function busyboxRootfs(dir: string): Promise<string> {
  const rootfs = join(dir, 'busybox-rootfs');
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc']) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  for (const a of APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
  return rootfs;
}

const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
const ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

/** The process part of a spec (also an exec's spec). */
export function processSpec(args: readonly string[], terminal = false): Record<string, unknown> {
  return {
    terminal,
    user: { uid: 0, gid: 0 },
    args,
    env: ENV,
    cwd: '/',
    capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    noNewPrivileges: true,
  };
}

/** An OCI spec as `runc spec` writes it, with containerd's cgroup path `/<ns>/<id>`. */
export function ociSpec(namespace: string, id: string, args: readonly string[]): AnyValue {
  const spec = {
    ociVersion: '1.0.2-dev',
    process: processSpec(args),
    root: { path: 'rootfs', readonly: true },
    hostname: id,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
    ],
    linux: {
      cgroupsPath: `/${namespace}/${id}`,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  return { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) };
}

export const jsonAny = (typeUrl: string, value: unknown): AnyValue => ({ typeUrl, value: Buffer.from(JSON.stringify(value)) });

/** A stdio FIFO read as a client reads it (O_RDWR|O_NONBLOCK, so the open never blocks and EOF never comes). */
export class FifoReader {
  text = '';
  private constructor(
    readonly path: string,
    private readonly socket: Socket,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (this.text += c));
  }

  static async open(path: string): Promise<FifoReader> {
    await mkfifo(path, 0o700);
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    return new FifoReader(path, new Socket({ fd, readable: true, writable: false }));
  }

  async waitFor(pattern: string | RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const matches = () => (typeof pattern === 'string' ? this.text.includes(pattern) : pattern.test(this.text));
    while (!matches()) {
      if (Date.now() > deadline) throw new Error(`${this.path}: no ${String(pattern)} within ${timeoutMs} ms; got ${JSON.stringify(this.text)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.text;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface RecordedEvent {
  readonly source: 'shim' | 'runtime';
  readonly namespace: string;
  readonly topic: string;
  readonly event: Record<string, unknown>;
}

const decodeEvent = (typeUrl: string, value: Uint8Array): Record<string, unknown> =>
  messageCodec(typeNameOfUrl(typeUrl)).decode(value) as Record<string, unknown>;

/** berthd's part of the shim contract: Events/Forward on `<grpc address>.ttrpc`, plus a recording publisher. */
export class EventsRecorder implements EventPublisher {
  readonly events: RecordedEvent[] = [];
  private server: TtrpcServer | undefined;

  async listen(path: string): Promise<void> {
    const server = new TtrpcServer();
    server.register('containerd.services.events.ttrpc.v1.Events', {
      Forward: async (request: { envelope: { namespace: string; topic: string; event: { type_url: string; value: Buffer } } | null }) => {
        const e = request.envelope;
        if (e?.event) this.events.push({ source: 'shim', namespace: e.namespace, topic: e.topic, event: decodeEvent(e.event.type_url, e.event.value) });
        return {};
      },
    });
    await server.listen(path);
    this.server = server;
  }

  async publish(namespace: string, topic: string, event: AnyValue): Promise<void> {
    this.events.push({ source: 'runtime', namespace, topic, event: decodeEvent(event.typeUrl, event.value) });
  }

  topics(filter?: (e: RecordedEvent) => boolean): string[] {
    return this.events.filter(filter ?? (() => true)).map((e) => e.topic);
  }

  async waitFor(predicate: (e: RecordedEvent) => boolean, timeoutMs = 30_000): Promise<RecordedEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.topics())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }
}


/** Processes whose command line is a shim of this namespace. */
export function shimPids(namespace: string, id?: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.includes('containerd-shim')) continue;
    const ns = argv[argv.indexOf('-namespace') + 1];
    const pid = argv[argv.indexOf('-id') + 1];
    if (ns === namespace && (id === undefined || pid === id)) pids.push(Number(name));
  }
  return pids;
}

/** Mount points at or under `dir`. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)));
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Cgroup directories named after the namespace, in every hierarchy (v1 and v2). */
export function cgroupsOf(namespace: string): string[] {
  const found: string[] = [];
  const hierarchies = existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) ? [CGROUP_ROOT] : readdirSync(CGROUP_ROOT).map((h) => join(CGROUP_ROOT, h));
  for (const h of hierarchies) {
    const d = join(h, namespace);
    try {
      if (statSync(d).isDirectory()) found.push(d);
    } catch {
      // not in this hierarchy
    }
  }
  return found;
}

function rmdirTree(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return;
  }
  for (const e of entries) rmdirTree(join(dir, e));
  try {
    rmdirSync(dir);
  } catch {
    // busy: a process is still in it
  }
}

export interface ShimTestEnv {
  readonly dir: string;
  readonly namespace: string;
  readonly rootfs: string;
  readonly stateDir: string;
  readonly rootDir: string;
  readonly grpcAddress: string;
  readonly ttrpcAddress: string;
  readonly runcRoot: string;
  readonly events: EventsRecorder;
  /** Ids of tasks the test created (their shim sockets are checked by leftovers). */
  readonly ids: Set<string>;
  open(config?: Partial<RuntimeRuncConfig>, log?: Logger, extra?: { lostEventAfterMs?: number }): Promise<ShimRuntime>;
  /** Bind mounts of the busybox rootfs, as a snapshotter would hand them. */
  readonly rootfsMounts: { type: string; source: string; options: string[] }[];
  teardown(): Promise<void>;
}

/** A private state dir, a unique namespace, the events server, and the teardown of everything in that namespace. */
export async function shimTestEnv(): Promise<ShimTestEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-rt-'));
  const namespace = `rt-${randomBytes(4).toString('hex')}`;
  const rootfs = await busyboxRootfs(dir);
  const grpcAddress = join(dir, 'berth.sock');
  const ttrpcAddress = `${grpcAddress}.ttrpc`;
  const events = new EventsRecorder();
  await events.listen(ttrpcAddress);
  const stateDir = join(dir, 'state', 'io.containerd.runtime.v2.task');
  const rootDir = join(dir, 'root', 'io.containerd.runtime.v2.task');
  const runcRoot = join(dir, 'state', 'runc');
  const runtimes: ShimRuntime[] = [];
  const env: ShimTestEnv = {
    dir,
    namespace,
    rootfs,
    stateDir,
    rootDir,
    grpcAddress,
    ttrpcAddress,
    runcRoot,
    events,
    ids: new Set(),
    rootfsMounts: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
    async open(config = {}, log = nullLogger, extra = {}) {
      const rt = await ShimRuntime.open({ stateDir, rootDir, grpcAddress, ttrpcAddress, runcRoot, config: { ...runtimeRuncConfigDefaults, ...config }, log, events, ...extra });
      runtimes.push(rt);
      return rt;
    },
    async teardown() {
      for (const rt of runtimes) await rt.close().catch(() => undefined);
      for (const pid of shimPids(namespace)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      const runcNs = join(runcRoot, namespace);
      for (const runc of ['runc', 'crun']) {
        if (!existsSync(runcNs)) break;
        try {
          const list = JSON.parse(execFileSync(runc, ['--root', runcNs, 'list', '--format', 'json'], { encoding: 'utf8' }) || '[]') as { id: string }[] | null;
          for (const c of list ?? []) spawnSync(runc, ['--root', runcNs, 'delete', '--force', c.id]);
        } catch {
          // nothing for this runtime
        }
      }
      for (const m of mountsUnder(dir).reverse()) spawnSync('umount', ['-l', m]);
      for (const socket of shimSockets(env)) await rm(socket, { force: true });
      await new Promise((r) => setTimeout(r, 50));
      for (const cg of cgroupsOf(namespace)) rmdirTree(cg);
      await events.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** The shim sockets of the test's tasks that exist: `/run/containerd/s/<sha256(<grpc address>/<ns>/<id>)>`. */
export function shimSockets(env: ShimTestEnv): string[] {
  return [...env.ids]
    .map((id) => join('/run/containerd/s', createHash('sha256').update(`${env.grpcAddress}/${env.namespace}/${id}`).digest('hex')))
    .filter((p) => existsSync(p));
}

/** What a test must not leave behind in its namespace and dir. */
export function leftovers(env: ShimTestEnv): { shims: number[]; mounts: string[]; bundles: string[]; runc: string[]; sockets: string[] } {
  const bundles = (() => {
    try {
      return readdirSync(join(env.stateDir, env.namespace));
    } catch {
      return [];
    }
  })();
  const runc = (() => {
    try {
      return readdirSync(join(env.runcRoot, env.namespace));
    } catch {
      return [];
    }
  })();
  return { shims: shimPids(env.namespace), mounts: mountsUnder(env.dir), bundles, runc, sockets: shimSockets(env) };
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
