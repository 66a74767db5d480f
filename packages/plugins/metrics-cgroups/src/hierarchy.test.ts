import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cgroupOfProcess, cgroupOfSpecPath, detectHierarchy, parseHierarchy } from './hierarchy.js';

const HYBRID = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
].join('\n');
const UNIFIED = '26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';

describe('cgroup hierarchy detection', () => {
  it('reads a hybrid host as v1, with every controller of a co-mounted hierarchy', () => {
    const h = parseHierarchy(HYBRID)!;
    expect(h.version).toBe(1);
    expect([...h.controllers.keys()].sort()).toEqual(['cpu', 'cpuacct', 'memory', 'pids']);
    expect(h.controllers.get('cpuacct')!.mountpoint).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(h.unified?.mountpoint).toBe('/sys/fs/cgroup/unified');
    expect(parseHierarchy(HYBRID, 'v2')!.version).toBe(2);
  });

  it('reads a unified host as v2 and a host without cgroups as nothing', () => {
    expect(parseHierarchy(UNIFIED)).toMatchObject({ version: 2, unified: { mountpoint: '/sys/fs/cgroup', root: '/' } });
    expect(parseHierarchy(UNIFIED, 'v1')).toBeUndefined();
    expect(parseHierarchy('1 0 0:1 / / rw - ext4 /dev/vda rw\n')).toBeUndefined();
    expect(parseHierarchy('')).toBeUndefined();
  });

  it("finds a process's cgroup per controller, relative to each mount's root", () => {
    const h = parseHierarchy(HYBRID.replace('0:32 / /sys/fs/cgroup/memory', '0:32 /outer /sys/fs/cgroup/memory'))!;
    const cg = cgroupOfProcess(h, '12:pids:/default/web\n4:memory:/outer/default/web\n2:cpu,cpuacct:/default/web\n1:name=systemd:/x\n0::/\n');
    expect(cg).toEqual({
      version: 1,
      dirs: new Map([
        ['pids', '/sys/fs/cgroup/pids/default/web'],
        ['memory', '/sys/fs/cgroup/memory/default/web'],
        ['cpu', '/sys/fs/cgroup/cpu,cpuacct/default/web'],
        ['cpuacct', '/sys/fs/cgroup/cpu,cpuacct/default/web'],
      ]),
    });
    expect(cgroupOfProcess(parseHierarchy(UNIFIED)!, '0::/default/web\n')).toEqual({ version: 2, dir: '/sys/fs/cgroup/default/web' });
    expect(cgroupOfProcess(parseHierarchy(UNIFIED)!, 'garbage')).toBeUndefined();
  });

  it("maps a spec's plain absolute cgroupsPath and refuses systemd, relative and escaping ones", () => {
    const v1 = parseHierarchy(HYBRID)!;
    expect(cgroupOfSpecPath(v1, '/default/web')).toMatchObject({ version: 1 });
    expect((cgroupOfSpecPath(v1, "/default/web") as { dirs: ReadonlyMap<string, string> } | undefined)?.dirs.get('memory')).toBe('/sys/fs/cgroup/memory/default/web');
    expect(cgroupOfSpecPath(parseHierarchy(UNIFIED)!, '/default/web')).toEqual({ version: 2, dir: '/sys/fs/cgroup/default/web' });
    for (const bad of ['system.slice:berth:web', 'default/web', '/a/../../etc', '', undefined]) expect(cgroupOfSpecPath(v1, bad)).toBeUndefined();
  });

  it('detects this host', async () => {
    const h = await detectHierarchy();
    if (existsSync('/sys/fs/cgroup/cgroup.controllers') || existsSync('/sys/fs/cgroup/memory')) expect(h).toBeDefined();
    // Whatever this host has, the version agrees with its mounts.
    if (h?.version === 1) expect(h.controllers.size).toBeGreaterThan(0);
    if (h?.version === 2) expect(h.unified).toBeDefined();
  });
});
