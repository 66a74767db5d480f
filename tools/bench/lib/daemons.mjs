// What every benchmark needs: berthd and a private containerd (Debian's package; private root, state and socket,
// the CRI plugin disabled) started on temp dirs, Debian's ctr against either, and RSS from /proc.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';

const repo = new URL('../../..', import.meta.url).pathname;
// The launcher, as installed on PATH (tools/setup.sh): the bundled daemon run from its code cache.
export const BERTHD = join(repo, 'packages/daemon/dist/berthd-launch.cjs');
export const BERTH = join(repo, 'packages/cli/dist/berth-launch.cjs');
export const CONTAINERD = '/usr/bin/containerd';

export const rssKiB = (pid) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

/** Whether a unix socket at `path` accepts a connection now. */
export function accepts(path) {
  return new Promise((resolve) => {
    const s = connect(path, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function waitSocket(path, child, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}`);
    if (existsSync(path) && (await accepts(path))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no socket at ${path}`);
}

/** Starts berthd on `dir`; resolves once its socket accepts, or at once with `{ wait: false }`; with `nodeArgs`
 * (e.g. `--cpu-prof`, which NODE_OPTIONS refuses) the launcher runs under `node <nodeArgs>`; berthd's re-exec for its
 * heap flags keeps them. */
export async function startBerthd(dir, { wait = true, nodeArgs = [], args = [] } = {}) {
  const sock = join(dir, 'berth.sock');
  const argv = ['--root', join(dir, 'root'), '--state', join(dir, 'state'), '--address', sock, '--log-level', 'warn', ...args];
  const child = nodeArgs.length > 0
    ? spawn(process.execPath, [...nodeArgs, BERTHD, ...argv], { stdio: ['ignore', 'ignore', 'ignore'] })
    : spawn(BERTHD, argv, { stdio: ['ignore', 'ignore', 'ignore'] });
  if (wait) await waitSocket(sock, child);
  return { name: 'berthd', sock, child };
}

export async function startContainerd(dir, { wait = true } = {}) {
  const sock = join(dir, 'containerd.sock');
  const config = join(dir, 'containerd.toml');
  await mkdir(dir, { recursive: true });
  await writeFile(config, [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]', `address = "${sock}"`,
    '[ttrpc]', `address = "${sock}.ttrpc"`,
  ].join('\n'));
  const child = spawn(CONTAINERD, ['--config', config, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'ignore'] });
  if (wait) await waitSocket(sock, child);
  return { name: 'containerd', sock, child };
}

export function ctr(sock, cmd, { stdinFile, stdoutFile } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/ctr', ['--address', sock, '-n', 'bench', ...cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    if (stdinFile) createReadStream(stdinFile).pipe(child.stdin);
    else child.stdin.end();
    if (stdoutFile) child.stdout.pipe(createWriteStream(stdoutFile));
    else child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ctr ${cmd.join(' ')}: exit ${code}: ${err}`))));
  });
}

/** Stops a daemon started here (SIGTERM, by its pid) and waits for it. */
export async function stopDaemon(d) {
  if (d.child.exitCode !== null) return;
  d.child.kill('SIGTERM');
  await once(d.child, 'exit');
}

/** Checks that what the benchmarks drive exists. */
export function requireDaemons() {
  if (!existsSync(BERTHD)) throw new Error('build first: pnpm nx run @berth/daemon:build');
  if (!existsSync(CONTAINERD)) throw new Error('containerd is needed as the reference (apt-get install containerd)');
}
