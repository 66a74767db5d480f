// The OCI runtime spec `berth containers create IMAGE ID [CMD...]` stores: containerd's default Unix spec
// (oci.populateDefaultUnixSpec: capabilities, namespaces, mounts, masked paths, cgroups path /<ns>/<id>) with the
// image's config applied as oci.WithImageConfig does (env, entrypoint + cmd, working dir, numeric user), then the
// command line's args, env and cwd. User names (which need the image's /etc/passwd) are refused with a clear error.
import { InvalidArgumentError } from '@berth/core';

/** The parts of an image config (OCI image-spec `config`) that the spec and labels take. */
export interface ImageRuntimeConfig {
  readonly env: readonly string[];
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly workingDir: string;
  readonly user: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly stopSignal: string;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

/** The runtime config of an image config document (missing fields empty; never throws on odd shapes). */
export function imageConfigOf(doc: unknown): ImageRuntimeConfig {
  const config = (doc as { config?: unknown } | null)?.config;
  const c = (typeof config === 'object' && config !== null ? config : {}) as Record<string, unknown>;
  const labels = typeof c['Labels'] === 'object' && c['Labels'] !== null ? (c['Labels'] as Record<string, unknown>) : {};
  return {
    env: strings(c['Env']),
    entrypoint: strings(c['Entrypoint']),
    cmd: strings(c['Cmd']),
    workingDir: typeof c['WorkingDir'] === 'string' ? c['WorkingDir'] : '',
    user: typeof c['User'] === 'string' ? c['User'] : '',
    labels: Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string')),
    stopSignal: typeof c['StopSignal'] === 'string' ? c['StopSignal'] : '',
  };
}

/** What the command line adds to the spec. */
export interface SpecOptions {
  /** The command and its arguments (replace the image's entrypoint and cmd, as ctr). */
  readonly args?: readonly string[];
  /** `K=V` entries added after the image's. */
  readonly env?: readonly string[];
  readonly cwd?: string;
  readonly tty?: boolean;
  /** The namespace, for the cgroups path. */
  readonly namespace?: string;
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];
const MOUNTS = [
  { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
];
const MASKED = ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'];
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** `uid[:gid]` of an image's User; names need the image's passwd file, which this does not read. */
function numericUser(user: string): { uid: number; gid: number } {
  if (user === '') return { uid: 0, gid: 0 };
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new InvalidArgumentError(`image user ${JSON.stringify(user)}: only numeric uid[:gid] is supported by containers create`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
}

export function specFor(id: string, image: ImageRuntimeConfig, options: SpecOptions = {}): Record<string, unknown> {
  const env = image.env.length > 0 ? [...image.env] : [DEFAULT_PATH];
  env.push(...(options.env ?? []));
  const args = options.args && options.args.length > 0 ? [...options.args] : [...image.entrypoint, ...image.cmd];
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: options.tty === true,
      user: numericUser(image.user),
      args,
      env,
      cwd: options.cwd || image.workingDir || '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs' },
    mounts: MOUNTS,
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      cgroupsPath: `/${options.namespace ?? 'default'}/${id}`,
      namespaces: ['pid', 'ipc', 'uts', 'mount', 'network'].map((type) => ({ type })),
      maskedPaths: MASKED,
      readonlyPaths: READONLY,
    },
  };
}
