// Process-level calls Node 20 lacks: replacing the process image in place (Node 23 has process.execve) and giving
// freed heap memory back to the kernel.
import { libcOrUndefined, requireLibc } from './binding.js';
import { errnoError } from './errors.js';

const F_SETFD = 2;

/**
 * Replaces this process with `path` run with `argv` (argv[0] included) and `env`, keeping its pid, as execve(2)
 * does. Node marks stdin, stdout and stderr close-on-exec at start (libuv's uv_disable_stdio_inheritance); they are
 * made inheritable again first, so the new image writes where this one did. Returns only on failure (it throws).
 */
export function execve(path: string, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): never {
  const libc = requireLibc('execve');
  for (const fd of [0, 1, 2]) libc.fcntl(fd, F_SETFD, 0);
  const envp = Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  libc.execve(path, [...argv, null], [...envp, null]);
  throw errnoError(libc.errno(), 'execve', path);
}

/**
 * Asks glibc to return free memory at the top of its heaps and unused pages inside them to the kernel
 * (malloc_trim(3)): after a burst of large buffers (gRPC frames, layer data), what V8 and Node freed stays resident
 * otherwise. Takes milliseconds; call it when idle. Returns whether memory was released; false without the binding.
 */
export function mallocTrim(): boolean {
  const libc = libcOrUndefined();
  return libc !== undefined && libc.malloc_trim(0) === 1;
}
