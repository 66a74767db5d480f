// Registry authentication: the WWW-Authenticate challenge flow of the distribution spec (Bearer tokens from the
// realm, for the service and scopes asked, cached per scope set until they expire; Basic with the credentials
// given), and where credentials come from (`user:secret`, ~/.docker/config.json).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, NotImplementedError, UnauthenticatedError } from '@berth/core';

export interface Credentials {
  readonly username: string;
  readonly secret: string;
}

export type CredentialsFunction = (host: string) => Promise<Credentials | undefined>;

/** One challenge of a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses WWW-Authenticate values (RFC 7235: several challenges, comma-separated, each `scheme` followed by
 * `key=value` or `key="quoted \" value"` parameters). Scheme names are lowercased.
 */
export function parseChallenges(values: string | readonly string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const value of typeof values === 'string' ? [values] : (values ?? [])) {
    let i = 0;
    const s = value;
    let current: { scheme: string; params: Record<string, string> } | undefined;
    const skipSpace = () => {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    };
    while (i < s.length) {
      skipSpace();
      const tokenStart = i;
      while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(s[i]!)) i++;
      const token = s.slice(tokenStart, i);
      if (token === '') {
        i++;
        continue;
      }
      let j = i;
      while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
      if (s[j] === '=' && current) {
        // a parameter of the current challenge
        i = j + 1;
        while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
        let val = '';
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            val += s[i];
            i++;
          }
          i++;
        } else {
          const start = i;
          while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++;
          val = s.slice(start, i);
        }
        current.params[token.toLowerCase()] = val;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}

/** `user:secret` (the secret may contain colons); a bare `user` is refused (no password prompt here). */
export function parseUserSecret(text: string): Credentials {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new InvalidArgumentError('credentials must be given as user:secret');
  return { username: text.slice(0, colon), secret: text.slice(colon + 1) };
}

/** The same credentials for every host (ctr's `--user`). */
export function staticCredentials(text: string): CredentialsFunction {
  const creds = parseUserSecret(text);
  return () => Promise.resolve(creds);
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(): string {
  const dir = process.env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  return join(dir, 'config.json');
}

/** The host part of a docker config key: `https://host:5000/v1/` and `host:5000` both give `host:5000`. */
function configKeyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

/**
 * Credentials from a docker config file, read when a registry first asks for them: `auths.<host>.auth`
 * (base64 `user:secret`), or its `username`/`password`, or an `identitytoken` (sent as a refresh token). Credential
 * helpers (`credsStore`, `credHelpers`) are not supported: a host they would serve is a NotImplementedError.
 */
export function dockerConfigCredentials(path = dockerConfigPath()): CredentialsFunction {
  return async (host) => {
    let config: DockerConfig;
    try {
      config = JSON.parse(readFileSync(path, 'utf8')) as DockerConfig;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new InvalidArgumentError(`cannot read docker config ${path}: ${(err as Error).message}`, { cause: err });
    }
    const lookup = host === 'registry-1.docker.io' ? ['docker.io', 'index.docker.io', 'registry-1.docker.io'] : [host];
    const entry = Object.entries(config.auths ?? {}).find(([key]) => lookup.includes(configKeyHost(key)))?.[1];
    if (entry?.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new InvalidArgumentError(`docker config ${path}: auths.${host}.auth is not base64 of user:secret`);
      return { username: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
    }
    if (entry?.username !== undefined && entry.password !== undefined) return { username: entry.username, secret: entry.password };
    if (entry?.identitytoken) return { username: '', secret: entry.identitytoken };
    const helper = Object.entries(config.credHelpers ?? {}).find(([key]) => lookup.includes(configKeyHost(key)))?.[1] ?? config.credsStore;
    if (helper) {
      throw new NotImplementedError(
        `credentials for ${host}: docker credential helper "docker-credential-${helper}" (in ${path}) is not supported; give them as user:secret instead`,
      );
    }
    return undefined;
  };
}

/** A token as the realm gave it, with when it stops being usable. */
interface Token {
  readonly value: string;
  readonly expiresAt: number;
}

/** What the authorizer knows about one registry host after its first challenge. */
interface HostAuth {
  readonly scheme: 'bearer' | 'basic';
  readonly challenge: Challenge;
  readonly credentials?: Credentials;
  readonly tokens: Map<string, Promise<Token>>;
}

/** Fetches a token from a realm (the HTTP client's job): GET or POST with a body. */
export type TokenRequest = (req: {
  method: 'GET' | 'POST';
  url: URL;
  authorization?: string;
  form?: string;
}) => Promise<{ status: number; body: Buffer; statusText: string }>;

/** The distribution spec's default lifetime of a token that says nothing about it. */
const DEFAULT_TOKEN_SECONDS = 60;
/** Refresh a little early, so a token never expires in flight. */
const EXPIRY_MARGIN_MS = 5_000;

/**
 * Hands out Authorization headers per registry host. `authorize` gives the header for a request (none before the
 * host has challenged us); `challenged` learns from a 401 and says whether retrying can help.
 */
export class Authorizer {
  private readonly hosts = new Map<string, HostAuth>();

  constructor(
    private readonly credentials: CredentialsFunction | undefined,
    private readonly fetchToken: TokenRequest,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a header would be sent to `host` (for error messages). */
  sendsCredentials(host: string): boolean {
    return this.hosts.get(host)?.credentials !== undefined;
  }

  async authorize(host: string, scopes: readonly string[]): Promise<string | undefined> {
    const auth = this.hosts.get(host);
    if (!auth) return undefined;
    if (auth.scheme === 'basic') {
      const c = auth.credentials as Credentials;
      return `Basic ${Buffer.from(`${c.username}:${c.secret}`).toString('base64')}`;
    }
    const wanted = [...new Set([...scopes, ...(auth.challenge.params.scope ?? '').split(' ').filter((s) => s !== '')])].sort();
    const key = wanted.join(' ');
    let pending = auth.tokens.get(key);
    if (pending) {
      const token = await pending.catch(() => undefined);
      if (token && token.expiresAt > this.now()) return `Bearer ${token.value}`;
      if (auth.tokens.get(key) === pending) auth.tokens.delete(key);
      pending = auth.tokens.get(key);
    }
    if (!pending) {
      pending = this.requestToken(host, auth, wanted);
      auth.tokens.set(key, pending);
      // a failed token request is not cached
      pending.catch(() => auth.tokens.get(key) === pending && auth.tokens.delete(key));
    }
    return `Bearer ${(await pending).value}`;
  }

  /**
   * A 401 from `host` with these challenges. Returns true when a retry is worth it (a scheme we can answer, and
   * either a first challenge or new facts); false when the credentials were already tried and refused.
   */
  async challenged(host: string, values: string | readonly string[] | undefined, hadAuthorization: boolean): Promise<boolean> {
    const challenges = parseChallenges(values);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    const previous = this.hosts.get(host);
    if (bearer) {
      if (bearer.params.realm === undefined) throw new UnauthenticatedError(`registry ${host}: Bearer challenge without a realm`);
      // a token was sent and refused: asking for another only helps if the challenge names other scopes
      // (insufficient_scope) or says the token itself is bad (invalid_token: expired, revoked)
      const refused = hadAuthorization && previous?.scheme === 'bearer';
      if (refused && (previous.challenge.params.scope ?? '') === (bearer.params.scope ?? '') && bearer.params.error !== 'invalid_token') return false;
      const credentials = previous?.credentials ?? (await this.credentials?.(host));
      const tokens = refused || !previous ? new Map<string, Promise<Token>>() : previous.tokens;
      this.hosts.set(host, { scheme: 'bearer', challenge: bearer, ...(credentials ? { credentials } : {}), tokens });
      return true;
    }
    if (basic) {
      if (hadAuthorization && previous?.scheme === 'basic') return false;
      const credentials = await this.credentials?.(host);
      if (!credentials || credentials.username === '') return false;
      this.hosts.set(host, { scheme: 'basic', challenge: basic, credentials, tokens: new Map() });
      return true;
    }
    return false;
  }

  private async requestToken(host: string, auth: HostAuth, scopes: readonly string[]): Promise<Token> {
    const { realm, service } = auth.challenge.params;
    let url: URL;
    try {
      url = new URL(realm as string);
    } catch {
      throw new UnauthenticatedError(`registry ${host}: bad token realm ${JSON.stringify(realm)}`);
    }
    const creds = auth.credentials;
    let res: { status: number; body: Buffer; statusText: string };
    if (creds && creds.username === '') {
      // an identity (refresh) token: OAuth2 POST, as containerd does for a secret without a user name
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.secret, client_id: 'berth', ...(service ? { service } : {}) });
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      res = await this.fetchToken({ method: 'POST', url, form: form.toString() });
    } else {
      if (service) url.searchParams.append('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const authorization = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.secret}`).toString('base64')}` : undefined;
      res = await this.fetchToken({ method: 'GET', url, ...(authorization ? { authorization } : {}) });
    }
    if (res.status === 401 || res.status === 403) {
      throw new UnauthenticatedError(
        `registry ${host}: token server ${url.origin}${url.pathname} refused ${creds ? `the credentials of ${JSON.stringify(creds.username)}` : 'anonymous access'}: ${res.status} ${res.statusText}`,
      );
    }
    if (res.status < 200 || res.status >= 300) {
      throw new UnauthenticatedError(`registry ${host}: token server ${url.origin}${url.pathname}: ${res.status} ${res.statusText}`);
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(res.body.toString('utf8')) as typeof parsed;
    } catch {
      throw new UnauthenticatedError(`registry ${host}: token server ${url.origin}${url.pathname} sent no JSON`);
    }
    const value = typeof parsed.access_token === 'string' && parsed.access_token !== '' ? parsed.access_token : parsed.token;
    if (typeof value !== 'string' || value === '') throw new UnauthenticatedError(`registry ${host}: token server ${url.origin}${url.pathname} sent no token`);
    const seconds = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_TOKEN_SECONDS;
    const issued = typeof parsed.issued_at === 'string' ? Date.parse(parsed.issued_at) : NaN;
    const from = Number.isFinite(issued) && issued <= this.now() ? issued : this.now();
    return { value, expiresAt: from + seconds * 1000 - Math.min(EXPIRY_MARGIN_MS, (seconds * 1000) / 2) };
  }
}
