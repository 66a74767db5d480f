// containerd's default Linux spec (oci/spec.go populateDefaultUnixSpec, oci/mounts.go defaultMounts) and the way
// options compose (oci.ApplyOpts): a SpecOpt changes the spec in place, in order; the first failure stops.
import { InvalidArgumentError, validateIdentifier } from '@berth/core';
import type { RootFs } from './rootfs.js';
import type { OciMount, OciNamespace, OciSpec } from './types.js';

/** The runtime-spec version containerd 1.6 vendors (specs.Version). */
export const OCI_VERSION = '1.0.2-dev';

/** containerd's defaultUnixEnv: the PATH a process gets when the image names no environment. */
export const DEFAULT_UNIX_ENV: readonly string[] = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

/** containerd's defaultUnixCaps, in its order. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** containerd's defaultUnixNamespaces: pid, ipc, uts, mount, network (no user or cgroup namespace). */
export const DEFAULT_NAMESPACES: readonly string[] = ['pid', 'ipc', 'uts', 'mount', 'network'];

/** containerd's defaultMounts (oci/mounts.go), in its order. */
export function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  ];
}

/**
 * The container's cgroups read-only at /sys/fs/cgroup, with the options containerd's CRI plugin (and Docker) use.
 * containerd's oci defaults leave it out; berth's default spec has it (see cgroupMount in docs/cli.md).
 */
export function cgroupMount(): OciMount {
  return { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] };
}

/** What options may consult: the container's namespace and id, and its root filesystem (for users and groups). */
export interface SpecContext {
  readonly namespace: string;
  readonly id: string;
  /** The container's root filesystem, for options that read /etc/passwd and /etc/group (see rootfs.ts). */
  readonly rootfs?: RootFs;
}

/** One change to a spec (containerd's oci.SpecOpts). */
export type SpecOpt = (spec: OciSpec, ctx: SpecContext) => void | Promise<void>;

/** containerd's populateDefaultUnixSpec for `ctx.namespace`/`ctx.id`, plus the read-only cgroup mount. */
export function defaultSpec(ctx: Pick<SpecContext, 'namespace' | 'id'>): OciSpec {
  if (!ctx.namespace) throw new InvalidArgumentError('namespace is required');
  validateIdentifier(ctx.namespace);
  if (!ctx.id) throw new InvalidArgumentError('container id is required');
  return {
    ociVersion: OCI_VERSION,
    process: {
      user: { uid: 0, gid: 0 },
      cwd: '/',
      capabilities: { bounding: [...DEFAULT_CAPABILITIES], effective: [...DEFAULT_CAPABILITIES], permitted: [...DEFAULT_CAPABILITIES] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs' },
    mounts: [...defaultMounts(), cgroupMount()],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      cgroupsPath: `/${ctx.namespace}/${ctx.id}`,
      namespaces: DEFAULT_NAMESPACES.map((type): OciNamespace => ({ type })),
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
}

/** Applies the options in order (containerd's ApplyOpts). */
export async function applySpecOpts(spec: OciSpec, ctx: SpecContext, opts: readonly SpecOpt[]): Promise<OciSpec> {
  for (const opt of opts) await opt(spec, ctx);
  return spec;
}

/** The default spec with the options applied (containerd's GenerateSpec). */
export async function generateSpec(ctx: SpecContext, ...opts: readonly SpecOpt[]): Promise<OciSpec> {
  return applySpecOpts(defaultSpec(ctx), ctx, opts);
}

/** The spec as the bytes stored in the container's `spec` Any (JSON, as containerd's typeurl marshals it). */
export function encodeSpec(spec: OciSpec): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(spec));
}

/** A stored spec back (InvalidArgument when it is not a JSON object with an ociVersion). */
export function decodeSpec(bytes: Uint8Array): OciSpec {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InvalidArgumentError(`OCI spec is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof (parsed as OciSpec).ociVersion !== 'string') {
    throw new InvalidArgumentError('OCI spec must be a JSON object with an ociVersion');
  }
  return parsed as OciSpec;
}
