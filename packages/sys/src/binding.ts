// The libc functions this package calls, bound through koffi on first use. Importing @berth/sys costs nothing:
// koffi (about 13 ms to load with libc) is required only when a function needs it, so CLI commands that never mount
// never pay for it.
import { createRequire } from 'node:module';
import { notImplemented } from './errors.js';

/** The libc calls, typed as koffi binds them (pointers as Buffer or string, `size_t`/`ssize_t` as number). */
export interface Libc {
  mount(source: string | Buffer | null, target: string | Buffer, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string | Buffer, flags: number): number;
  mknod(path: string | Buffer, mode: number, dev: bigint): number;
  mkfifo(path: string | Buffer, mode: number): number;
  lsetxattr(path: string | Buffer, name: string, value: Buffer, size: number, flags: number): number;
  lgetxattr(path: string | Buffer, name: string, value: Buffer | null, size: number): number;
  llistxattr(path: string | Buffer, list: Buffer | null, size: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: Uint32Array): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  utimensat(dirfd: number, path: string | Buffer, times: Buffer, flags: number): number;
  futimens(fd: number, times: Buffer): number;
  execve(path: string, argv: readonly (string | null)[], envp: readonly (string | null)[]): number;
  malloc_trim(pad: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, length: number): number;
  sendto(fd: number, data: Buffer, size: number, flags: number, addr: Buffer, length: number): number;
  recv(fd: number, data: Buffer, size: number, flags: number): number;
  close(fd: number): number;
  // posix_spawn(3) and what goes with it (spawn.ts): the opaque glibc structs are caller-allocated Buffers. Absent
  // when this libc lacks one of them (see bind()).
  pipe2(fds: Buffer, flags: number): number;
  posix_spawn: {
    (pid: Buffer, path: string, fileActions: Buffer, attr: Buffer, argv: readonly (string | null)[], envp: readonly (string | null)[]): number;
    /** koffi's asynchronous form: the call runs on a libuv pool thread, `done` back on the event loop. */
    async(
      pid: Buffer,
      path: string,
      fileActions: Buffer,
      attr: Buffer,
      argv: readonly (string | null)[],
      envp: readonly (string | null)[],
      done: (err: unknown, rc: number) => void,
    ): void;
  };
  posix_spawn_file_actions_init(fa: Buffer): number;
  posix_spawn_file_actions_destroy(fa: Buffer): number;
  posix_spawn_file_actions_adddup2(fa: Buffer, fd: number, newfd: number): number;
  posix_spawn_file_actions_addchdir_np(fa: Buffer, path: string): number;
  posix_spawnattr_init(attr: Buffer): number;
  posix_spawnattr_destroy(attr: Buffer): number;
  posix_spawnattr_setflags(attr: Buffer, flags: number): number;
  posix_spawnattr_setsigmask(attr: Buffer, set: Buffer): number;
  posix_spawnattr_setsigdefault(attr: Buffer, set: Buffer): number;
  sigemptyset(set: Buffer): number;
  sigfillset(set: Buffer): number;
  waitpid(pid: number, status: Buffer, options: number): number;
  /** errno of the last call (koffi keeps it per thread). */
  errno(): number;
}

/** Set to 1 to behave as if koffi could not load (tests of the fallbacks; hosts that forbid FFI). */
export const NO_FFI_ENV = 'BERTH_SYS_NO_FFI';

let state: { libc: Libc } | { error: Error } | undefined;

/** The bound libc, or the reason it could not be bound. Loads koffi on the first call only. */
export function loadLibc(): { libc: Libc } | { error: Error } {
  state ??= bind();
  return state;
}

/** The bound libc for `syscall`; without it, a NotImplemented-style error (ENOSYS) that says why (callers with no fallback). */
export function requireLibc(syscall: string): Libc {
  const s = loadLibc();
  if (!('libc' in s)) throw notImplemented(syscall, s.error.message);
  return s.libc;
}

/** The bound libc, or undefined when koffi is unavailable (callers with a fallback use it). */
export function libcOrUndefined(): Libc | undefined {
  const s = loadLibc();
  return 'libc' in s ? s.libc : undefined;
}

function bind(): { libc: Libc } | { error: Error } {
  if (process.env[NO_FFI_ENV] === '1') return { error: new Error(`FFI disabled by ${NO_FFI_ENV}=1`) };
  if (process.platform !== 'linux') return { error: new Error(`FFI to libc is only bound on Linux, not ${process.platform}`) };
  try {
    // koffi ships CommonJS; require keeps the load synchronous for the synchronous functions.
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load('libc.so.6');
    const f = (decl: string) => lib.func(decl) as (...args: unknown[]) => number;
    const fns = {
      mount: f('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
      umount2: f('int umount2(const char *target, int flags)'),
      // dev_t is 64-bit on Linux; koffi takes a BigInt for it.
      mknod: f('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
      mkfifo: f('int mkfifo(const char *path, uint32_t mode)'),
      lsetxattr: f('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
      lgetxattr: f('intptr_t lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)'),
      llistxattr: f('intptr_t llistxattr(const char *path, _Out_ void *list, size_t size)'),
      getsockopt: f('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *length)'),
      fcntl: f('int fcntl(int fd, int cmd, int arg)'),
      // times: two struct timespec { int64 tv_sec; int64 tv_nsec } (x86-64 and arm64), packed by the caller.
      utimensat: f('int utimensat(int dirfd, const char *path, const void *times, int flags)'),
      futimens: f('int futimens(int fd, const void *times)'),
      execve: f('int execve(const char *path, const char **argv, const char **envp)'),
      malloc_trim: f('int malloc_trim(size_t pad)'),
      // Unix datagram sockets (sd_notify), which node:dgram does not offer.
      socket: f('int socket(int domain, int type, int protocol)'),
      bind: f('int bind(int fd, const void *addr, uint32_t length)'),
      sendto: f('intptr_t sendto(int fd, const void *data, size_t size, int flags, const void *addr, uint32_t length)'),
      recv: f('intptr_t recv(int fd, _Out_ void *data, size_t size, int flags)'),
      close: f('int close(int fd)'),
    };
    // posix_spawn and its helpers (spawn.ts) are bound apart: a libc without one of them (addchdir_np needs glibc
    // 2.29) leaves spawnPiped unavailable, and its callers on child_process, instead of every other call.
    let spawnFns: Record<string, unknown> = {};
    try {
      spawnFns = {
        pipe2: f('int pipe2(_Out_ void *fds, int flags)'),
        // posix_spawn returns the error number itself (0 on success) and, in glibc, reports a failed exec too.
        posix_spawn: f('int posix_spawn(_Out_ void *pid, const char *path, const void *fa, const void *attr, const char **argv, const char **envp)'),
        posix_spawn_file_actions_init: f('int posix_spawn_file_actions_init(void *fa)'),
        posix_spawn_file_actions_destroy: f('int posix_spawn_file_actions_destroy(void *fa)'),
        posix_spawn_file_actions_adddup2: f('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
        posix_spawn_file_actions_addchdir_np: f('int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)'),
        posix_spawnattr_init: f('int posix_spawnattr_init(void *attr)'),
        posix_spawnattr_destroy: f('int posix_spawnattr_destroy(void *attr)'),
        posix_spawnattr_setflags: f('int posix_spawnattr_setflags(void *attr, short flags)'),
        posix_spawnattr_setsigmask: f('int posix_spawnattr_setsigmask(void *attr, const void *set)'),
        posix_spawnattr_setsigdefault: f('int posix_spawnattr_setsigdefault(void *attr, const void *set)'),
        sigemptyset: f('int sigemptyset(void *set)'),
        sigfillset: f('int sigfillset(void *set)'),
        waitpid: f('int waitpid(int pid, _Out_ void *status, int options)'),
      };
    } catch {
      spawnFns = {};
    }
    const libc = { ...fns, ...spawnFns, errno: () => koffi.errno() } as unknown as Libc;
    return { libc };
  } catch (err) {
    return { error: new Error(`cannot bind libc through koffi: ${(err as Error).message}`, { cause: err }) };
  }
}

/** Whether the FFI binding is (or would be) in use; loads it. For diagnostics and tests. */
export function ffiStatus(): { readonly loaded: boolean; readonly reason?: string } {
  const s = loadLibc();
  return 'libc' in s ? { loaded: true } : { loaded: false, reason: s.error.message };
}

/** Test hook: forget the binding so the next call binds again (e.g. after changing BERTH_SYS_NO_FFI). */
export function resetBindingForTests(): void {
  state = undefined;
}
