// The real containerd 1.6 Go client in tests: the programs under test/go/<name>/main.go, built offline with Debian's
// Go (golang-go, go 1.19) in GOPATH mode against the containerd source Debian ships
// (golang-github-containerd-containerd-dev, which depends on every package the client imports). No network: GOPATH
// mode with GO111MODULE=off resolves imports from /usr/share/gocode/src, and GOPROXY=off makes a missing one an error
// instead of a download.
//
// A build takes minutes cold on a busy 2-core machine (2-5 minutes for the containerd client's ~150 packages; 293 s at load 30)
// and seconds warm, so each program is built once into a cache dir keyed by a hash of its sources, the Go version
// and the containerd source version: `$BERTH_GO_CACHE`, or <tmpdir>/berth-go-cache. The Go build cache lives there
// too, so a changed program rebuilds in seconds. Builds run one at a time (a lock file), so concurrent test files
// share the cache instead of compiling the client twice at once.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './harness.js';

export const GO = '/usr/bin/go';
const GOCODE = '/usr/share/gocode';
const CONTAINERD_SRC = join(GOCODE, 'src/github.com/containerd/containerd');
const PROGRAMS = fileURLToPath(new URL('./go/', import.meta.url));

export const goCacheDir = (): string => process.env.BERTH_GO_CACHE ?? join(tmpdir(), 'berth-go-cache');

/** Why the Go programs cannot be built here, or undefined when they can. */
export function goMissing(): string | undefined {
  if (!existsSync(GO)) return `${GO} is missing (apt-get install golang-go)`;
  if (!existsSync(join(CONTAINERD_SRC, 'client.go'))) return `containerd's Go source is missing at ${CONTAINERD_SRC} (apt-get install golang-github-containerd-containerd-dev)`;
  return undefined;
}

/**
 * For `describe.skipIf`: true (skip, with the reason printed) only on a dev box without Go. In CI (CI=true) it is
 * false, so the suite runs and its build fails with the reason: CI must run the Go client.
 */
export function skipWithoutGo(): boolean {
  const reason = goMissing();
  if (reason === undefined || process.env.CI === 'true') return false;
  console.warn(`skipping the Go client tests: ${reason}`);
  return true;
}

function goEnv(cache: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? cache,
    GO111MODULE: 'off',
    GOPATH: `${join(cache, 'gopath')}:${GOCODE}`,
    GOCACHE: join(cache, 'gocache'),
    GOPROXY: 'off',
    GOFLAGS: '',
    GOENV: 'off',
    // A static binary: no C toolchain needed, and nothing of the host's libc.
    CGO_ENABLED: '0',
  };
}

/** The cache key of one program: its sources, the Go toolchain and the containerd source it builds against. */
async function programKey(dir: string, cache: string): Promise<string> {
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    hash.update(name).update('\0').update(readFileSync(join(dir, name))).update('\0');
  }
  const version = await run(GO, ['version'], { env: goEnv(cache) });
  hash.update(version.stdout);
  hash.update(readFileSync(join(CONTAINERD_SRC, 'version/version.go')));
  return hash.digest('hex').slice(0, 16);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Takes `lock` (O_EXCL, holding our pid); waits while a live process holds it, steals it from a dead one. */
async function withLock<T>(lock: string, done: () => boolean, fn: () => Promise<T>): Promise<T | undefined> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      const handle = await open(lock, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(await readFile(lock, 'utf8').catch(() => '0'));
      if (holder > 0 && !alive(holder)) {
        await rm(lock, { force: true });
        continue;
      }
      if (done()) return undefined;
      if (Date.now() > deadline) throw new Error(`${lock} held by pid ${holder} for 15 minutes`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

const built = new Map<string, Promise<string>>();

/**
 * The path of the built program test/go/<name> (building it first if the cache lacks it). Throws with Go's output
 * when the build fails, and with the reason when Go or the containerd source is missing.
 */
export function goProgram(name: string): Promise<string> {
  let p = built.get(name);
  if (!p) {
    p = buildProgram(name);
    built.set(name, p);
    p.catch(() => built.delete(name));
  }
  return p;
}

async function buildProgram(name: string): Promise<string> {
  const missing = goMissing();
  if (missing) throw new Error(`cannot build the Go program ${name}: ${missing}`);
  const cache = goCacheDir();
  const src = join(PROGRAMS, name);
  const bin = join(cache, 'bin', `${name}-${await programKey(src, cache)}`);
  if (existsSync(bin)) return bin;
  await mkdir(join(cache, 'bin'), { recursive: true });
  // One build at a time across programs and test files: the second one then finds the client's packages in the
  // shared Go build cache and takes seconds instead of building them again beside the first.
  await withLock(join(cache, 'build.lock'), () => existsSync(bin), async () => {
    if (existsSync(bin)) return;
    const tmp = `${bin}.tmp-${process.pid}`;
    const started = Date.now();
    const r = await goBuild(src, tmp, goEnv(cache));
    if (r.code !== 0) {
      await rm(tmp, { force: true });
      throw new Error(`go build of ${name} failed (${r.code ?? r.signal}):\n${r.output}`);
    }
    await rename(tmp, bin);
    // Older builds of this program (other source hashes) are dead weight.
    for (const entry of readdirSync(join(cache, 'bin'))) {
      if (entry.startsWith(`${name}-`) && /^[0-9a-f]{16}$/.test(entry.slice(name.length + 1)) && join(cache, 'bin', entry) !== bin) {
        await rm(join(cache, 'bin', entry), { force: true });
      }
    }
    console.info(`built the Go program ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s (${bin})`);
  });
  if (!existsSync(bin)) throw new Error(`the Go program ${name} was not built at ${bin}`);
  return bin;
}

/** `go build -o out .` in `dir` (GOPATH mode takes no absolute package paths), with a 15-minute limit. */
function goBuild(dir: string, out: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(GO, ['build', '-trimpath', '-o', out, '.'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    // A test run that ends (or is killed by vitest) during a build takes the build with it.
    const killOnExit = (): void => {
      child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', killOnExit);
      resolve({ code, signal, output });
    });
  });
}

export interface GoResult<T> extends RunResult {
  /** The JSON object the program printed last on stdout (undefined if it printed none). */
  readonly json: T | undefined;
}

/** The failure shape every program prints on stdout (exit 3). */
export interface GoFailure {
  readonly error: string;
  /** The errdefs class the Go client sees: 'invalid-argument', 'not-found', 'failed-precondition', ... */
  readonly errdef: string;
  readonly step?: string;
}

/** Runs a built program against `address` in `namespace`; never throws for a non-zero exit. */
export async function runGo<T>(bin: string, address: string, namespace: string, args: readonly string[], timeoutMs = 60_000): Promise<GoResult<T>> {
  const r = await run(bin, ['-address', address, '-namespace', namespace, ...args], { timeoutMs });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let json: T | undefined;
  try {
    json = last === '' ? undefined : (JSON.parse(last) as T);
  } catch {
    json = undefined;
  }
  return { ...r, json };
}
