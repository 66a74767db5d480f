// The shipped systemd unit (packaging/systemd/berthd.service): systemd-analyze accepts it, and berthd started the
// way the unit starts it (its ExecStart command line and Environment, with $NOTIFY_SOCKET as systemd sets it for a
// Type=notify service) says READY=1 once its socket answers and STOPPING=1 when stopped. systemd itself does not
// run here, so nothing is installed or started through it; the daemon runs in a private mount namespace with
// tmpfs over its default directories, so its built-in defaults (/var/lib/berth, /run/berth, /etc/berth) are used
// without touching the host's.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { bindDatagramSocket } from '@berth/sys';
import { CTR, DAEMON_MAIN, hasCtr, hasRoot, run } from './harness.js';

const UNIT = fileURLToPath(new URL('../../../packaging/systemd/berthd.service', import.meta.url));
const INSTALLED = '/usr/local/bin/berthd';
const DEFAULT_DIRS = ['/var/lib/berth', '/run/berth', '/etc/berth'];

/** The [Service] section's settings (the last value of each key, as systemd reads single-valued keys). */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

const unitText = readFileSync(UNIT, 'utf8');
const service = serviceSettings(unitText);
// CI runs tools/setup.sh, which installs the command the unit names; a developer's machine may not have it yet.
const installed = existsSync(INSTALLED);
if (process.env.CI === 'true' && !installed) throw new Error(`${INSTALLED} is missing: tools/setup.sh should have linked it`);

const tmp = mkdtempSync(join(tmpdir(), 'berth-unit-'));
const madeDirs: string[] = [];
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  for (const d of madeDirs.reverse()) {
    try {
      rmdirSync(d);
    } catch {
      // Not empty any more: something else uses it now.
    }
  }
});

/** The unit as shipped, or (when the command is not installed) a copy that names this checkout's launcher. */
function unitToVerify(): string {
  if (installed) return UNIT;
  const copy = join(tmp, 'berthd.service');
  writeFileSync(copy, unitText.replace(/^ExecStart=\/usr\/local\/bin\/berthd/m, `ExecStart=${DAEMON_MAIN}`));
  return copy;
}

describe('berthd.service', () => {
  it('has the settings a container runtime needs under systemd', () => {
    expect(service.get('Type')).toEqual(['notify']);
    expect(service.get('KillMode')).toEqual(['process']);
    expect(service.get('Delegate')).toEqual(['yes']);
    expect(service.get('Restart')).toEqual(['always']);
    expect(service.get('LimitNOFILE')).toEqual(['infinity']);
    expect(service.get('TasksMax')).toEqual(['infinity']);
    expect(Number(service.get('OOMScoreAdjust')?.[0])).toBeLessThan(0);
    expect(service.get('ExecStart')).toEqual([INSTALLED]);
  });

  it(`is accepted by systemd-analyze verify${installed ? '' : ` (a copy naming ${DAEMON_MAIN}: ${INSTALLED} is not installed)`}`, async () => {
    const r = await run('systemd-analyze', ['verify', unitToVerify()]);
    expect(r.stderr + r.stdout).toBe('');
    expect(r.code).toBe(0);
  });

  it('a unit naming a missing command is refused by the same check (the check can fail)', async () => {
    const broken = join(tmp, 'broken.service');
    writeFileSync(broken, unitText.replace(/^ExecStart=.*$/m, `ExecStart=${join(tmp, 'no-such-berthd')}`));
    const r = await run('systemd-analyze', ['verify', broken]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no-such-berthd');
  });

  it.skipIf(!hasRoot() || !hasCtr())(`berthd started as the unit starts it notifies READY=1 once it answers, STOPPING=1 on SIGTERM${hasRoot() && hasCtr() ? '' : ' (skipped: needs root for a mount namespace, and ctr)'}`, async () => {
    const argv = service.get('ExecStart')![0]!.split(/\s+/);
    if (!installed) argv[0] = DAEMON_MAIN;
    const env: NodeJS.ProcessEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
    for (const assignment of service.get('Environment') ?? []) {
      const [k, ...v] = assignment.split('=');
      env[k!] = v.join('=');
    }
    const notifyPath = join(tmp, 'notify.sock');
    const notify = bindDatagramSocket(notifyPath);
    env.NOTIFY_SOCKET = notifyPath;
    for (const d of DEFAULT_DIRS) {
      if (!existsSync(d)) {
        mkdirSync(d, { recursive: true });
        madeDirs.push(d);
      }
    }
    // unshare and sh both exec, so the daemon keeps the spawned pid: MAINPID must be it.
    const script = `${DEFAULT_DIRS.map((d) => `mount -t tmpfs berth-unit-test ${d}`).join(' && ')} && exec "$@"`;
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...argv], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const ready = await notify.receive(30_000);
      expect(ready, stderr).toBeDefined();
      expect(ready!.split('\n')).toEqual(expect.arrayContaining(['READY=1', `MAINPID=${child.pid}`]));
      // Ready means answering: the default socket, seen through the daemon's own mount namespace.
      const version = await run(CTR, ['--address', `/proc/${child.pid}/root/run/berth/berth.sock`, 'version']);
      expect(version.code, version.stderr).toBe(0);
      expect(version.stdout).toMatch(/Server:\s+Version:\s+v\d/);
      child.kill('SIGTERM');
      expect(await notify.receive(10_000)).toBe('STOPPING=1');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      notify.close();
    }
  }, 60_000);
});
