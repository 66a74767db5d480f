// Composable spec options, each the counterpart of one of containerd's (oci/spec_opts.go, spec_opts_linux.go,
// contrib/seccomp), with its semantics: env replaces or appends by key, mounts append, args replace, and so on.
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '@berth/core';
import { DEFAULT_UNIX_ENV, type SpecOpt } from './spec.js';
import type { OciCpu, OciLinux, OciMount, OciProcess, OciResources, OciSeccomp, OciSpec } from './types.js';
import { withAdditionalGids, withUser } from './user.js';

function processOf(spec: OciSpec): OciProcess {
  spec.process ??= { user: { uid: 0, gid: 0 }, cwd: '' };
  return spec.process;
}

function linuxOf(spec: OciSpec): OciLinux {
  spec.linux ??= {};
  return spec.linux;
}

function resourcesOf(spec: OciSpec): OciResources {
  const linux = linuxOf(spec);
  linux.resources ??= {};
  return linux.resources;
}

function cpuOf(spec: OciSpec): OciCpu {
  const resources = resourcesOf(spec);
  resources.cpu ??= {};
  return resources.cpu;
}

/**
 * containerd's replaceOrAppendEnvValues: each override replaces the default with its key or is appended; an
 * override without `=` removes that key.
 */
export function replaceOrAppendEnv(defaults: readonly string[], overrides: readonly string[]): string[] {
  const results: (string | undefined)[] = [...defaults];
  const index = new Map<string, number>();
  defaults.forEach((e, i) => index.set(e.split('=', 1)[0] as string, i));
  for (const value of overrides) {
    const eq = value.indexOf('=');
    if (eq < 0) {
      const i = index.get(value);
      if (i !== undefined) results[i] = undefined;
      continue;
    }
    const i = index.get(value.slice(0, eq));
    if (i !== undefined) results[i] = value;
    else results.push(value);
  }
  return results.filter((e): e is string => e !== undefined && e !== '');
}

/** containerd's WithEnv: `KEY=value` set or replaced, a bare `KEY` removed. */
export function withEnv(env: readonly string[]): SpecOpt {
  return (spec) => {
    if (env.length === 0) return;
    const process = processOf(spec);
    process.env = replaceOrAppendEnv(process.env ?? [], env);
  };
}

/** containerd's WithProcessArgs: the whole command line. */
export function withProcessArgs(...args: readonly string[]): SpecOpt {
  return (spec) => {
    const process = processOf(spec);
    process.args = [...args];
    delete process.commandLine;
  };
}

export function withProcessCwd(cwd: string): SpecOpt {
  return (spec) => {
    processOf(spec).cwd = cwd;
  };
}

/** containerd's WithTTY: a terminal, and TERM=xterm appended on Linux. */
export const withTTY: SpecOpt = (spec) => {
  const process = processOf(spec);
  process.terminal = true;
  if (spec.linux) process.env = [...(process.env ?? []), 'TERM=xterm'];
};

export function withTTYSize(width: number, height: number): SpecOpt {
  return (spec) => {
    processOf(spec).consoleSize = { height, width };
  };
}

export function withHostname(name: string): SpecOpt {
  return (spec) => {
    spec.hostname = name;
  };
}

/** containerd's WithMounts: appended after the defaults (a later mount over the same destination wins in runc). */
export function withMounts(mounts: readonly OciMount[]): SpecOpt {
  return (spec) => {
    spec.mounts = [...(spec.mounts ?? []), ...mounts.map((m) => ({ ...m, ...(m.options ? { options: [...m.options] } : {}) }))];
  };
}

/** containerd's WithoutMounts: drops the mounts at these destinations (compared after cleaning). */
export function withoutMounts(...destinations: readonly string[]): SpecOpt {
  return (spec) => {
    const clean = (p: string) => (p.length > 1 ? p.replace(/\/+$/, '') : p);
    spec.mounts = (spec.mounts ?? []).filter((m) => !destinations.includes(clean(m.destination)));
  };
}

/**
 * ctr's `--mount` syntax: `type=bind,src=/host,dst=/ctr,options=rbind:ro` (keys type, source|src,
 * destination|dst, options; the fields are CSV, options `:`-separated).
 */
export function parseMountFlag(text: string): OciMount {
  const mount: OciMount = { destination: '' };
  for (const field of splitCsv(text)) {
    const eq = field.indexOf('=');
    if (eq < 0) throw new InvalidArgumentError(`invalid mount specification ${JSON.stringify(text)}: expected key=val`);
    const key = field.slice(0, eq);
    const value = field.slice(eq + 1);
    switch (key) {
      case 'type':
        mount.type = value;
        break;
      case 'source':
      case 'src':
        mount.source = value;
        break;
      case 'destination':
      case 'dst':
        mount.destination = value;
        break;
      case 'options':
        mount.options = value.split(':');
        break;
      default:
        throw new InvalidArgumentError(`mount option ${JSON.stringify(key)} not supported`);
    }
  }
  if (!mount.destination.startsWith('/')) throw new InvalidArgumentError(`mount ${JSON.stringify(text)}: destination must be an absolute path`);
  return mount;
}

/** One CSV record (Go's encoding/csv: fields may be double-quoted, `""` is a quote inside). */
function splitCsv(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new InvalidArgumentError(`invalid mount specification ${JSON.stringify(text)}: unterminated quote`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ',') throw new InvalidArgumentError(`invalid mount specification ${JSON.stringify(text)}: text after a quoted field`);
    } else {
      const end = text.indexOf(',', i);
      field = end < 0 ? text.slice(i) : text.slice(i, end);
      i = end < 0 ? text.length : end;
    }
    fields.push(field);
    if (i >= text.length) return fields;
    i++; // the comma
  }
}

/** containerd's WithRootFSReadonly. */
export const withRootfsReadonly: SpecOpt = (spec) => {
  spec.root ??= { path: 'rootfs' };
  spec.root.readonly = true;
};

/** containerd's WithRootFSPath: an unmanaged root filesystem directory. */
export function withRootfsPath(path: string): SpecOpt {
  return (spec) => {
    spec.root = { ...(spec.root ?? {}), path };
  };
}

/** containerd's WithMemoryLimit: `linux.resources.memory.limit` in bytes. */
export function withMemoryLimit(bytes: number): SpecOpt {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidArgumentError(`invalid memory limit ${bytes}: a positive number of bytes`);
  return (spec) => {
    const resources = resourcesOf(spec);
    resources.memory = { ...(resources.memory ?? {}), limit: bytes };
  };
}

/** containerd's WithCPUCFS: quota and period in microseconds. */
export function withCpuCfs(quota: number, period: number): SpecOpt {
  return (spec) => {
    const cpu = cpuOf(spec);
    cpu.quota = quota;
    cpu.period = period;
  };
}

/** ctr's `--cpus`: a CFS quota of `cpus` × 100000 µs per 100000 µs period. */
export function withCpus(cpus: number): SpecOpt {
  if (!Number.isFinite(cpus) || cpus <= 0) throw new InvalidArgumentError(`invalid cpus ${cpus}: a positive number`);
  return withCpuCfs(Math.trunc(cpus * 100_000), 100_000);
}

export function withCpuShares(shares: number): SpecOpt {
  return (spec) => {
    cpuOf(spec).shares = shares;
  };
}

/** containerd's WithCgroup (an empty path disables cgroups for runc). */
export function withCgroup(path: string): SpecOpt {
  return (spec) => {
    linuxOf(spec).cgroupsPath = path;
  };
}

export function withAnnotations(annotations: Readonly<Record<string, string>>): SpecOpt {
  return (spec) => {
    spec.annotations = { ...(spec.annotations ?? {}), ...annotations };
  };
}

/** containerd's WithHostNamespace: leaves the namespace of that type out (the task shares the host's). */
export function withHostNamespace(type: string): SpecOpt {
  return (spec) => {
    const linux = linuxOf(spec);
    linux.namespaces = (linux.namespaces ?? []).filter((n) => n.type !== type);
  };
}

export function withAddedCapabilities(caps: readonly string[]): SpecOpt {
  return (spec) => {
    const c = (processOf(spec).capabilities ??= {});
    for (const key of ['bounding', 'effective', 'permitted'] as const) {
      const list = (c[key] ??= []);
      for (const cap of caps) if (!list.includes(cap)) list.push(cap);
    }
  };
}

export function withDroppedCapabilities(caps: readonly string[]): SpecOpt {
  return (spec) => {
    const c = (processOf(spec).capabilities ??= {});
    for (const key of ['bounding', 'effective', 'permitted'] as const) c[key] = (c[key] ?? []).filter((x) => !caps.includes(x));
  };
}

/** containerd's WithDefaultUnixDevices (ctr run adds it): /dev/null, random, full, tty, zero, urandom, console, pts, ptmx. */
export const withDefaultUnixDevices: SpecOpt = (spec) => {
  const resources = resourcesOf(spec);
  const dev = (major: number, minor?: number) => ({ allow: true, type: 'c', major, ...(minor === undefined ? {} : { minor }), access: 'rwm' });
  resources.devices = [...(resources.devices ?? []), dev(1, 3), dev(1, 8), dev(1, 7), dev(5, 0), dev(1, 5), dev(1, 9), dev(5, 1), dev(136), dev(5, 2)];
};

const SECCOMP_KEYS = ['defaultAction', 'defaultErrnoRet', 'architectures', 'flags', 'listenerPath', 'listenerMetadata', 'syscalls'] as const;

/**
 * A seccomp profile in the runtime spec's format (`linux.seccomp`), checked enough that runc will not choke on it:
 * an object with a string `defaultAction` and, if any, `syscalls` entries with `names` and an `action`. As Go's
 * json.Unmarshal, keys the spec does not know (Docker's `archMap`) are dropped.
 */
export function parseSeccompProfile(bytes: Uint8Array, source = 'seccomp profile'): OciSeccomp {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InvalidArgumentError(`decoding ${source} failed: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidArgumentError(`${source}: expected a JSON object`);
  const raw = parsed as Record<string, unknown>;
  if (typeof raw.defaultAction !== 'string' || raw.defaultAction === '') throw new InvalidArgumentError(`${source}: defaultAction must be a non-empty string`);
  if (raw.syscalls !== undefined) {
    if (!Array.isArray(raw.syscalls)) throw new InvalidArgumentError(`${source}: syscalls must be an array`);
    raw.syscalls.forEach((s: unknown, i) => {
      const sc = s as Record<string, unknown> | null;
      if (typeof sc !== 'object' || sc === null || !Array.isArray(sc.names) || !sc.names.every((n) => typeof n === 'string') || typeof sc.action !== 'string') {
        throw new InvalidArgumentError(`${source}: syscalls[${i}] needs names (strings) and an action`);
      }
    });
  }
  for (const key of ['architectures', 'flags'] as const) {
    if (raw[key] !== undefined && (!Array.isArray(raw[key]) || !(raw[key] as unknown[]).every((x) => typeof x === 'string'))) {
      throw new InvalidArgumentError(`${source}: ${key} must be an array of strings`);
    }
  }
  const out: Record<string, unknown> = { defaultAction: raw.defaultAction };
  for (const key of SECCOMP_KEYS) if (key !== 'defaultAction' && raw[key] !== undefined && raw[key] !== null) out[key] = raw[key];
  return out as OciSeccomp;
}

/** contrib/seccomp's WithProfile: the profile file at `path` as `linux.seccomp`. */
export function withSeccompProfile(path: string): SpecOpt {
  return async (spec) => {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new InvalidArgumentError(`cannot load seccomp profile ${JSON.stringify(path)}: ${(err as Error).message}`, { cause: err });
    }
    linuxOf(spec).seccomp = parseSeccompProfile(bytes, `seccomp profile ${JSON.stringify(path)}`);
  };
}

/** What of an OCI image config (its `config` object) a spec takes. */
export interface ImageRuntimeConfig {
  readonly user?: string;
  readonly env?: readonly string[];
  readonly entrypoint?: readonly string[];
  readonly cmd?: readonly string[];
  readonly workingDir?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly stopSignal?: string;
}

function strings(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new InvalidArgumentError(`image config: ${what} must be an array of strings`);
  return v as string[];
}

function optionalString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new InvalidArgumentError(`image config: ${what} must be a string`);
  return v;
}

/** The runtime part of an OCI (or Docker schema 2) image config blob. */
export function parseImageRuntimeConfig(bytes: Uint8Array): ImageRuntimeConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InvalidArgumentError(`image config is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InvalidArgumentError('image config must be a JSON object');
  const c = (doc as { config?: unknown }).config;
  if (c === undefined || c === null) return {};
  if (typeof c !== 'object' || Array.isArray(c)) throw new InvalidArgumentError('image config: config must be an object');
  const cfg = c as Record<string, unknown>;
  const labels = cfg.Labels;
  if (labels !== undefined && labels !== null && (typeof labels !== 'object' || Array.isArray(labels) || !Object.values(labels).every((x) => typeof x === 'string'))) {
    throw new InvalidArgumentError('image config: Labels must be an object of strings');
  }
  const out: Record<string, unknown> = {
    user: optionalString(cfg.User, 'User'),
    env: strings(cfg.Env, 'Env'),
    entrypoint: strings(cfg.Entrypoint, 'Entrypoint'),
    cmd: strings(cfg.Cmd, 'Cmd'),
    workingDir: optionalString(cfg.WorkingDir, 'WorkingDir'),
    labels: labels ?? undefined,
    stopSignal: optionalString(cfg.StopSignal, 'StopSignal'),
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as ImageRuntimeConfig;
}

/**
 * containerd's WithImageConfigArgs (Linux): the image's env under the spec's (PATH when it has none), entrypoint +
 * (`args` or cmd), working dir ('/' when unset), and its user resolved in the root filesystem, with the additional
 * groups from /etc/group (for root too). Apply it after the options whose env it must keep.
 */
export function withImageConfig(config: ImageRuntimeConfig, args: readonly string[] = []): SpecOpt {
  return async (spec, ctx) => {
    const process = processOf(spec);
    if (!spec.linux) throw new InvalidArgumentError('spec does not contain a Linux section');
    const defaults = config.env && config.env.length > 0 ? config.env : DEFAULT_UNIX_ENV;
    process.env = replaceOrAppendEnv(defaults, process.env ?? []);
    const cmd = args.length > 0 ? args : (config.cmd ?? []);
    process.args = [...(config.entrypoint ?? []), ...cmd];
    process.cwd = config.workingDir || '/';
    if (config.user) {
      await withUser(config.user)(spec, ctx);
      await withAdditionalGids(String(process.user.uid))(spec, ctx);
      return;
    }
    await withAdditionalGids('root')(spec, ctx);
  };
}
