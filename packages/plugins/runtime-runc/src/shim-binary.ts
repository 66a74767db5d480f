// The shim binary as containerd runs it (runtime/v2/binary.go, shim/util.go): which file a runtime name means,
// the arguments and environment of `start` and `delete`, and running them with a deadline.
import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { DeadlineExceededError, InvalidArgumentError, NotFoundError, UnknownError } from '@berth/core';
import { ffiStatus, spawnPiped } from '@berth/sys';

/**
 * containerd's shim binary name for a runtime name: the last two dot-separated parts, so `io.containerd.runc.v2`
 * is `containerd-shim-runc-v2`. Undefined when the name has fewer than two parts.
 */
export function shimBinaryName(runtime: string): string | undefined {
  const parts = runtime.split('.');
  if (parts.length < 2) return undefined;
  const name = parts[parts.length - 2]!;
  const version = parts[parts.length - 1]!;
  if (!name || !version || /[/\s]/.test(name + version)) return undefined;
  return `containerd-shim-${name}-${version}`;
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    if (!s.isFile()) return false;
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The shim binary of a runtime: an absolute path as it is (it must exist), otherwise containerd's name for the
 * runtime looked up on PATH. NotFound when nothing is installed, InvalidArgument for a name that maps to none.
 */
export async function resolveShimBinary(runtime: string, path = process.env.PATH ?? ''): Promise<string> {
  if (!runtime) throw new InvalidArgumentError('no runtime name');
  if (isAbsolute(runtime)) {
    if (!(await isExecutableFile(runtime))) throw new NotFoundError(`runtime binary ${runtime} is not an executable file`);
    return runtime;
  }
  const name = shimBinaryName(runtime);
  if (!name) {
    throw new InvalidArgumentError(
      `invalid runtime name ${JSON.stringify(runtime)}: it should look like io.containerd.runc.v2 or be the absolute path of a shim binary`,
    );
  }
  for (const dir of path.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  throw new NotFoundError(`runtime ${JSON.stringify(runtime)}: shim binary ${name} is not installed (not on PATH)`);
}

export interface ShimCommand {
  /** The shim binary (absolute). */
  readonly binary: string;
  readonly namespace: string;
  readonly id: string;
  /** berthd's gRPC socket path: the shim only hashes it into its socket name. */
  readonly grpcAddress: string;
  /** Where the shim forwards its events (`<grpc address>.ttrpc`). */
  readonly ttrpcAddress: string;
  /** `-publish-binary`: accepted and unused by the v2 shims. */
  readonly publishBinary: string;
  readonly bundle: string;
  readonly debug?: boolean;
}

/** `start`'s arguments, in containerd's order. */
export function startArgs(c: ShimCommand): string[] {
  return [
    '-namespace', c.namespace,
    '-address', c.grpcAddress,
    '-publish-binary', c.publishBinary,
    '-id', c.id,
    ...(c.debug ? ['-debug'] : []),
    'start',
  ];
}

/** `delete`'s arguments: the cleanup of a shim that is gone. */
export function deleteArgs(c: ShimCommand): string[] {
  return ['-namespace', c.namespace, '-address', c.grpcAddress, '-publish-binary', c.publishBinary, '-id', c.id, '-bundle', c.bundle, 'delete'];
}

/** berthd's environment plus what containerd adds (GOMAXPROCS=2, TTRPC_ADDRESS). */
export function shimEnv(c: ShimCommand, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, GOMAXPROCS: '2', TTRPC_ADDRESS: c.ttrpcAddress };
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/**
 * Runs the shim binary with cwd = the bundle, `input` written to stdin and stdin then closed (the `start`
 * subcommand reads stdin to its end: left open, it never exits). The process gets a session and so a process group
 * of its own (containerd's Setpgid), so the shim it forks never shares berthd's. After `timeoutMs` the process
 * group is killed and the call fails with DeadlineExceeded.
 *
 * Started through posix_spawn on a pool thread (@berth/sys spawnPiped): child_process.spawn forks berthd whole and
 * blocks its event loop for the copy of its page tables and until the child has exec'd (tens of milliseconds per
 * shim at berthd's RSS on a loaded host, serialised across concurrent creates). child_process remains the
 * fallback where the FFI binding cannot load.
 */
export async function runShim(c: ShimCommand, args: readonly string[], input: Uint8Array | undefined, timeoutMs: number): Promise<RunResult> {
  let child: ShimChild;
  try {
    child = await startChild(c, args);
  } catch (e) {
    throw new UnknownError(`cannot run shim ${c.binary} for ${c.namespace}/${c.id}: ${(e as Error).message}`, { cause: e });
  }
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.killGroup();
      reject(new DeadlineExceededError(`shim ${c.binary} ${args.at(-1)} for ${c.namespace}/${c.id} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // EPIPE when the binary exits without reading
    void child.failed.then((e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new UnknownError(`cannot run shim ${c.binary} for ${c.namespace}/${c.id}: ${e.message}`, { cause: e }));
    });
    void child.closed.then(({ code, signal }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    if (input && input.length > 0) child.stdin.write(input);
    child.stdin.end();
  });
}

interface ShimChild {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Exit (and stdout/stderr at their end). */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Settles only if the process could not be run after all (child_process reports that asynchronously). */
  readonly failed: Promise<Error>;
  killGroup(): void;
}

async function startChild(c: ShimCommand, args: readonly string[]): Promise<ShimChild> {
  const killGroup = (pid: number | undefined, fallback: () => void) => () => {
    try {
      process.kill(-pid!, 'SIGKILL');
    } catch {
      fallback();
    }
  };
  if (ffiStatus().loaded) {
    try {
      const child = await spawnPiped(c.binary, [c.binary, ...args], { cwd: c.bundle, env: shimEnv(c), newSession: true });
      return { ...child, closed: child.exited, failed: new Promise<Error>(() => undefined), killGroup: killGroup(child.pid, () => undefined) };
    } catch (err) {
      // ENOSYS: this libc lacks posix_spawn's helpers; child_process below. Anything else is the binary's failure.
      if ((err as { code?: string }).code !== 'ENOSYS') throw err;
    }
  }
  const child = spawn(c.binary, args, { cwd: c.bundle, env: shimEnv(c), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    closed: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal }))),
    failed: new Promise((resolve) => child.once('error', resolve)),
    killGroup: killGroup(child.pid, () => child.kill('SIGKILL')),
  };
}

/** The socket path of a shim address (`unix:///run/containerd/s/<hash>`, or a bare path). */
export function socketPathOf(address: string): string {
  const trimmed = address.trim();
  if (trimmed.startsWith('unix://')) return trimmed.slice('unix://'.length);
  if (isAbsolute(trimmed)) return trimmed;
  throw new InvalidArgumentError(`shim address ${JSON.stringify(trimmed)} is not a unix socket`);
}
