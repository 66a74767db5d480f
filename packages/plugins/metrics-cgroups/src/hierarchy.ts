// Where cgroups are on this host and which cgroup a task is in. The version is the host's, as containerd's
// cgroups.Mode() decides it: a cgroup2 filesystem at the cgroup root is unified (v2); v1 controller mounts (alone,
// or beside an almost empty v2 at <root>/unified, the "hybrid" layout) are v1, whose statistics come from the v1
// controllers.
import { join } from 'node:path';
import { readOptional } from './files.js';

export type CgroupVersion = 1 | 2;

/** One mounted hierarchy: where it is mounted and which cgroup of the hierarchy the mount shows at its top. */
export interface CgroupMount {
  readonly mountpoint: string;
  /** The mount's root within the hierarchy (mountinfo's 4th field; '/' unless a sub-tree is bind-mounted). */
  readonly root: string;
}

export interface CgroupHierarchy {
  readonly version: CgroupVersion;
  /** v1: controller name (cpu, cpuacct, memory, pids, blkio, hugetlb, ...) to its mount. */
  readonly controllers: ReadonlyMap<string, CgroupMount>;
  /** v2: the unified mount (for v1 hosts, the hybrid one if any; unused for statistics). */
  readonly unified?: CgroupMount;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * The cgroup hierarchies of a /proc/<pid>/mountinfo text. `preferred` forces a version (for hosts where the
 * automatic choice is wrong); undefined when there is no cgroup filesystem of that (or any) version.
 */
export function parseHierarchy(mountinfo: string, preferred: 'auto' | 'v1' | 'v2' = 'auto'): CgroupHierarchy | undefined {
  const controllers = new Map<string, CgroupMount>();
  let unified: CgroupMount | undefined;
  let unifiedAtTop = false;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    if (fields.length < 5) continue;
    const mount: CgroupMount = { root: unescape(fields[3]!), mountpoint: unescape(fields[4]!) };
    if (fstype === 'cgroup2') {
      // The first cgroup2 mount wins, unless a later one is the conventional top (/sys/fs/cgroup).
      if (!unified || mount.mountpoint === '/sys/fs/cgroup') unified = mount;
      if (mount.mountpoint === '/sys/fs/cgroup') unifiedAtTop = true;
    } else if (fstype === 'cgroup') {
      for (const option of superOptions.split(',')) {
        if (option.startsWith('name=') || !/^[a-z_]+$/.test(option) || NOT_CONTROLLERS.has(option)) continue;
        if (!controllers.has(option)) controllers.set(option, mount);
      }
    }
  }
  const v1 = controllers.size > 0;
  let version: CgroupVersion | undefined;
  if (preferred === 'v1') version = v1 ? 1 : undefined;
  else if (preferred === 'v2') version = unified ? 2 : undefined;
  else version = unified && (unifiedAtTop || !v1) ? 2 : v1 ? 1 : undefined;
  if (!version) return undefined;
  return { version, controllers, ...(unified ? { unified } : {}) };
}

/** Mount options of a v1 cgroup mount that are not controller names. */
const NOT_CONTROLLERS = new Set(['rw', 'ro', 'noprefix', 'xattr', 'clone_children', 'cpuset_v2_mode', 'nosuid', 'nodev', 'noexec', 'relatime']);

/** The host's hierarchy, from this process's mountinfo. */
export async function detectHierarchy(preferred: 'auto' | 'v1' | 'v2' = 'auto', procRoot = '/proc'): Promise<CgroupHierarchy | undefined> {
  const text = await readOptional(join(procRoot, 'self', 'mountinfo'));
  return text === undefined ? undefined : parseHierarchy(text, preferred);
}

/** Where one task's statistics are: per v1 controller, or the v2 directory. */
export type TaskCgroup =
  | { readonly version: 1; readonly dirs: ReadonlyMap<string, string> }
  | { readonly version: 2; readonly dir: string };

function within(mount: CgroupMount, path: string): string {
  // A path under the mount's root is shown relative to it; cgroup namespaces show paths that are already relative.
  const root = mount.root === '/' ? '' : mount.root;
  const rel = root && (path === root || path.startsWith(`${root}/`)) ? path.slice(root.length) : path;
  return join(mount.mountpoint, rel);
}

/**
 * The cgroup of a process, from its /proc/<pid>/cgroup text (`hierarchy-id:controllers:path` lines; v2's is `0::path`).
 * Undefined when the text names no cgroup of the hierarchy's version.
 */
export function cgroupOfProcess(hierarchy: CgroupHierarchy, procCgroup: string): TaskCgroup | undefined {
  const dirs = new Map<string, string>();
  for (const line of procCgroup.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const names = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (!path.startsWith('/')) continue;
    if (hierarchy.version === 2) {
      if (names === '' && hierarchy.unified) return { version: 2, dir: within(hierarchy.unified, path) };
      continue;
    }
    for (const name of names.split(',')) {
      const mount = hierarchy.controllers.get(name);
      if (mount) dirs.set(name, within(mount, path));
    }
  }
  if (hierarchy.version === 2 || dirs.size === 0) return undefined;
  return { version: 1, dirs };
}

/**
 * The cgroup runc makes of an OCI spec's `linux.cgroupsPath` when it is a plain absolute path (`/default/web` as
 * containerd's clients set it): under every v1 controller's mount, or under the v2 mount. Undefined for systemd
 * paths (`slice:prefix:name`) and relative ones, whose place depends on runc's own cgroup: those are found from the
 * task's init process instead.
 */
export function cgroupOfSpecPath(hierarchy: CgroupHierarchy, cgroupsPath: string | undefined): TaskCgroup | undefined {
  if (!cgroupsPath || !cgroupsPath.startsWith('/') || cgroupsPath.includes(':') || cgroupsPath.split('/').includes('..')) return undefined;
  if (hierarchy.version === 2) return hierarchy.unified ? { version: 2, dir: join(hierarchy.unified.mountpoint, cgroupsPath) } : undefined;
  const dirs = new Map<string, string>();
  for (const [name, mount] of hierarchy.controllers) dirs.set(name, join(mount.mountpoint, cgroupsPath));
  return { version: 1, dirs };
}
