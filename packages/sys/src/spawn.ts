// Starting a child process without forking Node. child_process.spawn forks the whole process (libuv's uv_spawn)
// and blocks the event loop until the child has exec'd: the kernel copies the page tables of every resident page
// first, so the block grows with RSS (about 25 ms at 150 MiB on a loaded 2-core host, 75 ms at 350 MiB). glibc's
// posix_spawn(3) runs the child on a vfork-style clone that shares memory until exec, so the cost stays flat
// (a fraction of a millisecond). Stdio are pipes the caller reads and writes as Node streams.
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { requireLibc, type Libc } from './binding.js';
import { errnoError, notImplemented } from './errors.js';

const O_CLOEXEC = 0o2000000;
const WNOHANG = 1;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
// glibc's opaque structs (x86-64: 80, 336 and 128 bytes), allocated with room to spare.
const FILE_ACTIONS_BYTES = 512;
const ATTR_BYTES = 1024;
const SIGSET_BYTES = 256;
/** Polling for the exit after the pipes closed: first retry, and the longest pause between two. */
const REAP_FIRST_MS = 1;
const REAP_MAX_MS = 50;

export interface SpawnOptions {
  /** The child's working directory. */
  readonly cwd?: string;
  /** The child's whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Runs the child in a session (and process group) of its own, as child_process's `detached` does. */
  readonly newSession?: boolean;
}

export interface ChildExit {
  /** The exit code, null when a signal ended the child. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnedChild {
  readonly pid: number;
  readonly stdin: Socket;
  readonly stdout: Socket;
  readonly stderr: Socket;
  /**
   * Settles once the child has exited and been reaped, after its stdout and stderr reached their end (as
   * child_process's `close` event): the caller must read both (or destroy them). Never rejects.
   */
  readonly exited: Promise<ChildExit>;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** Decodes a wait(2) status word. */
export function decodeWaitStatus(status: number): ChildExit {
  const sig = status & 0x7f;
  if (sig === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: SIGNAL_NAMES.get(sig) ?? null };
}

/**
 * Runs `file` (an absolute path: no PATH lookup) with `argv` (argv[0] included) through posix_spawn, its stdin,
 * stdout and stderr connected to pipes. The child starts with every signal at its default disposition and none
 * blocked (Node ignores SIGPIPE, which would otherwise carry over the exec), as child_process does. posix_spawn
 * itself runs on a libuv pool thread: with a vfork-style clone the caller waits until the child has exec'd, which
 * on a loaded host means until the scheduler ran it, and the event loop must not wait for that. A failure to start
 * (ENOENT, EACCES, ...) rejects with a SysError for `posix_spawn`. Needs the FFI binding (NotImplemented otherwise:
 * callers fall back to child_process).
 */
export async function spawnPiped(file: string, argv: readonly string[], options: SpawnOptions = {}): Promise<SpawnedChild> {
  const libc = requireLibc('posix_spawn');
  if (typeof (libc as Partial<Libc>).posix_spawn !== 'function') throw notImplemented('posix_spawn', 'this libc lacks posix_spawn or one of its helpers');
  const envp = Object.entries(options.env ?? process.env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const opened: number[] = [];
  const pipe = (): [number, number] => {
    const fds = Buffer.alloc(8);
    if (libc.pipe2(fds, O_CLOEXEC) !== 0) throw errnoError(libc.errno(), 'pipe2');
    const pair: [number, number] = [fds.readInt32LE(0), fds.readInt32LE(4)];
    opened.push(...pair);
    return pair;
  };
  const fa = Buffer.alloc(FILE_ACTIONS_BYTES);
  const attr = Buffer.alloc(ATTR_BYTES);
  let faReady = false;
  let attrReady = false;
  let pid: number;
  let parentEnds: [number, number, number];
  try {
    const [inRead, inWrite] = pipe();
    const [outRead, outWrite] = pipe();
    const [errRead, errWrite] = pipe();
    check(libc.posix_spawn_file_actions_init(fa), 'posix_spawn_file_actions_init');
    faReady = true;
    // dup2 onto 0-2 clears close-on-exec on the copies; every other pipe end closes at the exec.
    check(libc.posix_spawn_file_actions_adddup2(fa, inRead, 0), 'posix_spawn_file_actions_adddup2');
    check(libc.posix_spawn_file_actions_adddup2(fa, outWrite, 1), 'posix_spawn_file_actions_adddup2');
    check(libc.posix_spawn_file_actions_adddup2(fa, errWrite, 2), 'posix_spawn_file_actions_adddup2');
    if (options.cwd !== undefined) check(libc.posix_spawn_file_actions_addchdir_np(fa, options.cwd), 'posix_spawn_file_actions_addchdir_np', options.cwd);
    check(libc.posix_spawnattr_init(attr), 'posix_spawnattr_init');
    attrReady = true;
    const all = Buffer.alloc(SIGSET_BYTES);
    const none = Buffer.alloc(SIGSET_BYTES);
    libc.sigfillset(all);
    libc.sigemptyset(none);
    check(libc.posix_spawnattr_setsigdefault(attr, all), 'posix_spawnattr_setsigdefault');
    check(libc.posix_spawnattr_setsigmask(attr, none), 'posix_spawnattr_setsigmask');
    const flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (options.newSession ? POSIX_SPAWN_SETSID : 0);
    check(libc.posix_spawnattr_setflags(attr, flags), 'posix_spawnattr_setflags');
    const pidOut = Buffer.alloc(4);
    const rc = await new Promise<number>((resolve, reject) => {
      libc.posix_spawn.async(pidOut, file, fa, attr, [...argv, null], [...envp, null], (err, r) => (err ? reject(err as Error) : resolve(r)));
    });
    if (rc !== 0) throw errnoError(rc, 'posix_spawn', file);
    pid = pidOut.readInt32LE(0);
    // The child has its copies: close the parent's copies of the child's ends.
    for (const fd of [inRead, outWrite, errWrite]) closeFd(fd, opened);
    parentEnds = [inWrite, outRead, errRead];
  } catch (err) {
    for (const fd of [...opened]) closeFd(fd, opened);
    throw err;
  } finally {
    if (faReady) libc.posix_spawn_file_actions_destroy(fa);
    if (attrReady) libc.posix_spawnattr_destroy(attr);
  }
  const stdin = new Socket({ fd: parentEnds[0], readable: false, writable: true });
  const stdout = new Socket({ fd: parentEnds[1], readable: true, writable: false });
  const stderr = new Socket({ fd: parentEnds[2], readable: true, writable: false });
  stdin.on('error', () => undefined); // EPIPE when the child exits without reading
  const ended = (s: Socket) =>
    new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.once('error', () => s.destroy());
    });
  const exited = Promise.all([ended(stdout), ended(stderr)]).then(() => reap(pid));
  return { pid, stdin, stdout, stderr, exited };
}

function check(rc: number, call: string, path?: string): void {
  // The posix_spawn_* helpers return the error number rather than setting errno.
  if (rc !== 0) throw errnoError(rc, call, path);
}

function closeFd(fd: number, opened: number[]): void {
  const i = opened.indexOf(fd);
  if (i >= 0) opened.splice(i, 1);
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/**
 * Reaps `pid` once it has exited. Its pipes have reached their end, so it has exited or is about to (or closed
 * them and lives on): waitpid(WNOHANG) with short, growing pauses, never blocking the event loop.
 */
function reap(pid: number): Promise<ChildExit> {
  const libc = requireLibc('waitpid');
  const status = Buffer.alloc(4);
  return new Promise((resolve) => {
    let pause = REAP_FIRST_MS;
    const attempt = () => {
      const r = libc.waitpid(pid, status, WNOHANG);
      if (r === pid) return resolve(decodeWaitStatus(status.readInt32LE(0)));
      if (r < 0) return resolve({ code: null, signal: null }); // ECHILD: somebody else reaped it
      setTimeout(attempt, pause);
      pause = Math.min(pause * 2, REAP_MAX_MS);
    };
    attempt();
  });
}
