// Where the requests for a registry go: containerd 1.6's remotes/docker/config rules, read from its hosts.toml
// layout (`<hosts_dir>/<host>/hosts.toml`, certs.d). For a registry `host`:
// - the directory is the first of `<dir>/<host with ":port" as "_port_">`, `<dir>/<host>`, `<dir>/_default` that
//   exists; in it, hosts.toml (mirrors in `[host."..."]` tables, tried in file order, then `server`), or without
//   one Docker's certs.d files (`*.crt` CAs, `*.cert` + `*.key` client pairs) for the registry itself;
// - without a `server` the registry itself comes last, with the default scheme: http for localhost and loopback
//   addresses (127.0.0.0/8, ::1) with verification off, http for every host with plainHttp, https otherwise;
//   docker.io is served by registry-1.docker.io;
// - every entry has capabilities (pull, resolve, push; all three by default), `ca`, `client`, `skip_verify`,
//   `header` and `override_path` (the API root is the URL's path instead of `<path>/v2`).
// A hosts.toml that does not parse is an error here (containerd logs it and falls back to certs.d files: a typo
// would then silently skip the mirrors).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { InvalidArgumentError } from '@berth/core';
import { parse as parseToml } from 'smol-toml';

export type HostCapability = 'pull' | 'resolve' | 'push';
const CAPABILITIES: readonly HostCapability[] = ['pull', 'resolve', 'push'];

/** Files for TLS with one host (paths, read when the host's agent is made). */
export interface HostTlsFiles {
  readonly ca: readonly string[];
  /** `[certificate, key]`; key '' when the certificate file holds the key too. */
  readonly client: readonly (readonly [string, string])[];
  readonly skipVerify?: boolean;
}

/** One endpoint for a registry: the registry itself or a mirror. */
export interface RegistryHost {
  readonly scheme: 'http' | 'https';
  /** `host[:port]` of the endpoint. */
  readonly host: string;
  /** API root, `/v2` unless override_path. */
  readonly path: string;
  readonly capabilities: ReadonlySet<HostCapability>;
  readonly tls: HostTlsFiles;
  readonly headers: Readonly<Record<string, readonly string[]>>;
}

export interface HostsOptions {
  readonly plainHttp?: boolean;
  readonly hostsDir?: string;
}

/** containerd's docker.IsLocalhost: `localhost`, and IPv4/IPv6 loopback addresses, with or without a port. */
export function isLocalhost(host: string): boolean {
  let name = host;
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracket) name = bracket[1]!;
  else if ((host.match(/:/g) ?? []).length === 1) name = host.slice(0, host.indexOf(':'));
  if (name === 'localhost') return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(name) || name === '0:0:0:0:0:0:0:1';
  return false;
}

/** The directories looked at for `host`, in order (containerd's hostPaths). */
export function hostDirCandidates(root: string, host: string): string[] {
  const out: string[] = [];
  const colon = host.lastIndexOf(':');
  if (colon > 0) out.push(join(root, `${host.slice(0, colon)}_${host.slice(colon + 1)}_`));
  out.push(join(root, host), join(root, '_default'));
  return out;
}

const ALL = new Set<HostCapability>(CAPABILITIES);
const NO_TLS: HostTlsFiles = { ca: [], client: [] };

/** The endpoints for `host` (the part of a reference before the first `/`), mirrors first. */
export function configureHosts(host: string, options: HostsOptions = {}): RegistryHost[] {
  let configured: Partial<Mutable<RegistryHost>>[] | undefined;
  if (options.hostsDir !== undefined) {
    const dir = hostDirCandidates(options.hostsDir, host).find((p) => existsSync(p) && statSync(p).isDirectory());
    if (dir !== undefined) configured = loadHostDir(dir);
  }
  configured ??= [{}];
  const last = configured[configured.length - 1];
  if (last !== undefined && last.host === undefined) {
    if (host === 'docker.io') {
      last.scheme = 'https';
      last.host = 'registry-1.docker.io';
    } else if (isLocalhost(host)) {
      last.host = host;
      last.scheme = 'http';
      last.tls = { ...(last.tls ?? NO_TLS), skipVerify: true };
    } else {
      last.host = host;
      last.scheme = options.plainHttp ? 'http' : 'https';
    }
    last.path = '/v2';
    last.capabilities = ALL;
  }
  return configured.map((h) => ({
    scheme: h.scheme ?? 'https',
    host: h.host as string,
    path: h.path ?? '/v2',
    capabilities: h.capabilities ?? ALL,
    tls: h.tls ?? NO_TLS,
    headers: h.headers ?? {},
  }));
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function loadHostDir(dir: string): Partial<Mutable<RegistryHost>>[] {
  const file = join(dir, 'hosts.toml');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (text.trim() === '') return [{ tls: certsDirFiles(dir) }];
  return parseHostsToml(text, dir, file);
}

/** Docker's certs.d files: `*.crt` CAs, `*.cert` client certificates with their `*.key`. */
function certsDirFiles(dir: string): HostTlsFiles {
  const ca: string[] = [];
  const client: [string, string][] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) continue;
    if (entry.name.endsWith('.crt')) ca.push(join(dir, entry.name));
    if (entry.name.endsWith('.cert')) {
      const key = join(dir, `${entry.name.slice(0, -5)}.key`);
      client.push([join(dir, entry.name), existsSync(key) ? key : '']);
    }
  }
  return { ca, client };
}

/** Parses hosts.toml: `[host."<url>"]` tables in file order, then the top level (`server`). */
export function parseHostsToml(text: string, baseDir: string, file = join(baseDir, 'hosts.toml')): Partial<Mutable<RegistryHost>>[] {
  const bad = (why: string, cause?: unknown) => new InvalidArgumentError(`${file}: ${why}`, cause === undefined ? undefined : { cause });
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw bad(`not valid TOML: ${(err as Error).message.split('\n')[0]}`, err);
  }
  const hosts: Partial<Mutable<RegistryHost>>[] = [];
  const tables = doc.host ?? {};
  if (typeof tables !== 'object' || tables === null || Array.isArray(tables)) throw bad('`host` must be a table of [host."<url>"] tables');
  for (const [server, config] of Object.entries(tables as Record<string, unknown>)) {
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw bad(`[host.${JSON.stringify(server)}] must be a table`);
    hosts.push(parseEntry(server, config as Record<string, unknown>, baseDir, bad));
  }
  const top = { ...doc };
  delete top.host;
  const server = top.server;
  delete top.server;
  if (server !== undefined && typeof server !== 'string') throw bad('`server` must be a string');
  hosts.push(parseEntry(server ?? '', top, baseDir, bad));
  return hosts;
}

const KNOWN_KEYS = new Set(['capabilities', 'ca', 'client', 'skip_verify', 'header', 'override_path']);

function parseEntry(
  server: string,
  config: Record<string, unknown>,
  baseDir: string,
  bad: (why: string) => Error,
): Partial<Mutable<RegistryHost>> {
  const where = server === '' ? 'top level' : `[host.${JSON.stringify(server)}]`;
  for (const key of Object.keys(config)) {
    if (!KNOWN_KEYS.has(key)) throw bad(`${where}: unknown key ${JSON.stringify(key)} (known: server, ${[...KNOWN_KEYS].join(', ')})`);
  }
  const result: Partial<Mutable<RegistryHost>> = {};
  const overridePath = config.override_path;
  if (overridePath !== undefined && typeof overridePath !== 'boolean') throw bad(`${where}: override_path must be a boolean`);
  if (server !== '') {
    let url: URL;
    try {
      url = new URL(/^https?:\/\//.test(server) ? server : `https://${server}`);
    } catch {
      throw bad(`${where}: not a URL: ${JSON.stringify(server)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`${where}: scheme must be http or https`);
    result.scheme = url.protocol === 'http:' ? 'http' : 'https';
    result.host = url.host;
    let path = url.pathname.replace(/\/+$/, '');
    if (!path.endsWith('/v2') && !overridePath) path = `${path}/v2`;
    result.path = path === '' ? '/' : path;
  }
  const caps = config.capabilities;
  if (caps !== undefined) {
    if (!Array.isArray(caps)) throw bad(`${where}: capabilities must be a list of "pull", "resolve", "push"`);
    const set = new Set<HostCapability>();
    for (const c of caps) {
      const name = typeof c === 'string' ? c.toLowerCase() : '';
      if (!(CAPABILITIES as readonly string[]).includes(name)) throw bad(`${where}: unknown capability ${JSON.stringify(c)}`);
      set.add(name as HostCapability);
    }
    result.capabilities = set.size > 0 ? set : ALL;
  }
  const abs = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
  const ca: string[] = [];
  if (typeof config.ca === 'string') ca.push(abs(config.ca));
  else if (Array.isArray(config.ca) && config.ca.every((p) => typeof p === 'string')) ca.push(...(config.ca as string[]).map(abs));
  else if (config.ca !== undefined) throw bad(`${where}: ca must be a path or a list of paths`);
  const client: [string, string][] = [];
  const pairs = config.client;
  if (typeof pairs === 'string') client.push([abs(pairs), '']);
  else if (Array.isArray(pairs)) {
    for (const p of pairs) {
      if (typeof p === 'string') client.push([abs(p), '']);
      else if (Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'string')) client.push([abs(p[0] as string), abs(p[1] as string)]);
      else throw bad(`${where}: client must be a path, a list of paths or a list of [certificate, key] pairs`);
    }
  } else if (pairs !== undefined) throw bad(`${where}: client must be a path, a list of paths or a list of [certificate, key] pairs`);
  const skip = config.skip_verify;
  if (skip !== undefined && typeof skip !== 'boolean') throw bad(`${where}: skip_verify must be a boolean`);
  if (ca.length > 0 || client.length > 0 || skip !== undefined) result.tls = { ca, client, ...(skip !== undefined ? { skipVerify: skip } : {}) };
  const hdr = config.header;
  if (hdr !== undefined) {
    if (typeof hdr !== 'object' || hdr === null || Array.isArray(hdr)) throw bad(`${where}: header must be a table`);
    const headers: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(hdr as Record<string, unknown>)) {
      if (typeof v === 'string') headers[k] = [v];
      else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) headers[k] = v as string[];
      else throw bad(`${where}: header ${JSON.stringify(k)} must be a string or a list of strings`);
    }
    result.headers = headers;
  }
  return result;
}

/** The TLS options of a host's agent, with the files read (a missing file is a clear error). */
export function tlsAgentOptions(tls: HostTlsFiles): { ca?: Buffer[]; cert?: Buffer[]; key?: Buffer[]; rejectUnauthorized: boolean } {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new InvalidArgumentError(`cannot read ${what} ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const out: { ca?: Buffer[]; cert?: Buffer[]; key?: Buffer[]; rejectUnauthorized: boolean } = { rejectUnauthorized: tls.skipVerify !== true };
  if (tls.ca.length > 0) {
    // extra CAs add to the system's, as containerd's SystemCertPool + AppendCertsFromPEM
    out.ca = [...systemCAs(), ...tls.ca.map((p) => read(p, 'CA certificate'))];
  }
  if (tls.client.length > 0) {
    out.cert = tls.client.map(([cert]) => read(cert, 'client certificate'));
    out.key = tls.client.map(([cert, key]) => read(key === '' ? cert : key, 'client key'));
  }
  return out;
}

let systemRoots: Buffer[] | undefined;
function systemCAs(): Buffer[] {
  systemRoots ??= rootCertificates.map((pem) => Buffer.from(pem));
  return systemRoots;
}
