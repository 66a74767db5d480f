// The fallbacks that run util-linux/coreutils tools instead of the FFI call (koffi unavailable, or mount data that
// needs a working directory). They cost milliseconds a call, so nothing on a hot path should depend on them.
import { execFile } from 'node:child_process';
import { constants } from 'node:os';
import { errnoError, notImplemented, unknownSysError, type SysError } from './errors.js';

// The tools say what went wrong in words, not errno; these phrases (util-linux 2.38, coreutils 9) recover it.
const PHRASES: ReadonlyArray<readonly [RegExp, keyof typeof constants.errno]> = [
  [/must be superuser|operation not permitted/i, 'EPERM'],
  [/permission denied/i, 'EACCES'],
  [/target is busy|device or resource busy/i, 'EBUSY'],
  [/unknown filesystem type|no such device/i, 'ENODEV'],
  [/not mounted|wrong fs type|bad option|invalid argument/i, 'EINVAL'],
  [/does not exist|no mount point specified|no such file or directory/i, 'ENOENT'],
  [/file exists/i, 'EEXIST'],
  [/not a directory/i, 'ENOTDIR'],
  [/read-only file system/i, 'EROFS'],
  [/no space left on device/i, 'ENOSPC'],
];

export interface ToolCall {
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  /** The system call the tool stands in for, and its paths, for the error. */
  readonly syscall: string;
  readonly path?: string;
  readonly dest?: string;
}

/** Runs the tool; a non-zero exit becomes a SysError whose code is recovered from the tool's message. */
export function runTool(call: ToolCall): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(call.file, call.args, { cwd: call.cwd, timeout: 60_000, env: { ...process.env, LC_ALL: 'C' } }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !stderr) {
        return reject(notImplemented(call.syscall, `no FFI binding and ${call.file} is not installed`));
      }
      const said = String(stderr).trim().split('\n')[0] ?? '';
      const found = PHRASES.find(([re]) => re.test(said));
      const errno = found ? constants.errno[found[1]] : undefined;
      const base: SysError = errno !== undefined ? errnoError(errno, call.syscall, call.path, call.dest) : unknownSysError(call.syscall, call.path, call.dest);
      const detail = said || `${call.file} exited with ${String((err as { code?: unknown }).code ?? err.message)}`;
      (base as { message: string }).message += ` (${call.file}: ${detail})`;
      reject(base);
    });
  });
}
