// A task's OCI bundle, laid out as containerd's runtime/v2/bundle.go does:
//   <state>/<namespace>/<id>/            0700, the shim's cwd
//     config.json                        the container's spec
//     rootfs/                            0711, the shim mounts the rootfs mounts here
//     work -> <root>/<namespace>/<id>    the shim's persistent working dir
//     log                                FIFO: the shim's stderr (logrus), drained into berthd's log
//     address, init.pid, options.json, runtime, log.json   written by the shim
//     shim-binary-path                   the shim binary, for recovery after a restart
//     exit.json                          berth's own: the init process's exit once known (survives the shim)
import { lstat, mkdir, readFile, readlink, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AlreadyExistsError, isSystemError, validateIdentifier, type Exit } from '@berth/core';
import { unmountAll } from '@berth/sys';

export const CONFIG_FILE = 'config.json';
export const LOG_FIFO = 'log';
export const ADDRESS_FILE = 'address';
export const SHIM_BINARY_FILE = 'shim-binary-path';
export const EXIT_FILE = 'exit.json';
/** Written by the runc shim at Create: its absence means Create never ran (nothing for `delete` to clean). */
export const RUNTIME_FILE = 'runtime';

const isCode = (err: unknown, code: string): boolean => isSystemError(err) && err.code === code;

export class Bundle {
  private constructor(
    readonly namespace: string,
    readonly id: string,
    /** `<state>/<ns>/<id>` */
    readonly path: string,
    /** `<root>/<ns>/<id>` */
    readonly workPath: string,
  ) {}

  get rootfs(): string {
    return join(this.path, 'rootfs');
  }

  file(name: string): string {
    return join(this.path, name);
  }

  /** Creates the bundle; AlreadyExists when one is there, and nothing is left behind on failure. */
  static async create(stateDir: string, rootDir: string, namespace: string, id: string, spec: Uint8Array): Promise<Bundle> {
    validateIdentifier(namespace);
    validateIdentifier(id);
    const b = new Bundle(namespace, id, join(stateDir, namespace, id), join(rootDir, namespace, id));
    await mkdir(dirname(b.path), { recursive: true, mode: 0o711 });
    try {
      await mkdir(b.path, { mode: 0o700 });
    } catch (err) {
      if (isCode(err, 'EEXIST')) throw new AlreadyExistsError(`task ${namespace}/${id}: bundle ${b.path} already exists`, { cause: err });
      throw err;
    }
    try {
      await mkdir(b.rootfs, { mode: 0o711 });
      await mkdir(dirname(b.workPath), { recursive: true, mode: 0o711 });
      // A work dir without its bundle is left from an earlier task of this id: start afresh, as containerd does.
      await rm(b.workPath, { recursive: true, force: true });
      await mkdir(b.workPath, { mode: 0o711 });
      await symlink(b.workPath, b.file('work'));
      await writeFile(b.file(CONFIG_FILE), spec, { mode: 0o666 });
    } catch (err) {
      await rm(b.path, { recursive: true, force: true }).catch(() => undefined);
      await rm(b.workPath, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    return b;
  }

  /** An existing bundle (recovery). */
  static load(stateDir: string, rootDir: string, namespace: string, id: string): Bundle {
    return new Bundle(namespace, id, join(stateDir, namespace, id), join(rootDir, namespace, id));
  }

  async readText(name: string): Promise<string | undefined> {
    try {
      return await readFile(this.file(name), 'utf8');
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async exists(name: string): Promise<boolean> {
    try {
      await lstat(this.file(name));
      return true;
    } catch {
      return false;
    }
  }

  /** Records the init process's exit (written to a temp file, then renamed: never half a record). */
  async saveExit(exit: Exit): Promise<void> {
    const tmp = this.file(`.${EXIT_FILE}.tmp`);
    await writeFile(tmp, JSON.stringify({ pid: exit.pid, status: exit.status, exitedAt: exit.exitedAt.toISOString() }), { mode: 0o600 });
    await rename(tmp, this.file(EXIT_FILE));
  }

  /** The recorded exit, if any; a damaged record counts as none. */
  async loadExit(): Promise<Exit | undefined> {
    const text = await this.readText(EXIT_FILE).catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const v = JSON.parse(text) as { pid?: unknown; status?: unknown; exitedAt?: unknown };
      const exitedAt = typeof v.exitedAt === 'string' ? new Date(v.exitedAt) : undefined;
      if (typeof v.pid !== 'number' || typeof v.status !== 'number' || !exitedAt || Number.isNaN(exitedAt.getTime())) return undefined;
      return { pid: v.pid, status: v.status, exitedAt };
    } catch {
      return undefined;
    }
  }

  /**
   * Removes the bundle as containerd does: unmount whatever is still on rootfs, then rename to a hidden name and
   * remove (a crash mid-way leaves a hidden dir the recovery walk skips, never half a bundle), then the work dir.
   */
  async delete(): Promise<void> {
    const work = await readlink(this.file('work')).catch(() => this.workPath);
    await unmountAll(this.rootfs);
    await rmdir(this.rootfs).catch((err: unknown) => {
      if (!isCode(err, 'ENOENT')) throw err;
    });
    await atomicDelete(this.path);
    await atomicDelete(work);
  }
}

async function atomicDelete(path: string): Promise<void> {
  const hidden = join(dirname(path), `.${path.slice(dirname(path).length + 1)}`);
  try {
    await rename(path, hidden);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return;
    throw err;
  }
  await rm(hidden, { recursive: true, force: true });
}
