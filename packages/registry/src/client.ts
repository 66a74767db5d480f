// The request engine the resolver, fetchers and pushers share: endpoints per registry (hosts.ts), one keep-alive
// agent pair and one concurrency limit per endpoint, authorization (auth.ts), bounded retries with backoff for
// connection errors, 408, 429 (Retry-After honoured) and 5xx, and errdefs for the statuses that end a request.
import {
  CancelledError,
  InvalidArgumentError,
  isCancelled,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnknownError,
} from '@berth/core';
import { Authorizer, dockerConfigCredentials, type CredentialsFunction } from './auth.js';
import { configureHosts, tlsAgentOptions, type HostCapability, type RegistryHost } from './hosts.js';
import { createAgents, destroyAgents, IdleTimeoutError, readBody, send, type Agents, type HttpResponse, type RequestBody } from './http.js';

/** An endpoint ready to take requests. */
export interface Endpoint extends RegistryHost {
  readonly agents: Agents;
  readonly limit: Semaphore;
  /** `scheme://host` */
  readonly origin: string;
}

/** Tuning of the client (all have defaults). */
export interface ClientTuning {
  /** Fail a request when the connection moves no byte for this long (default 30 s). */
  readonly idleTimeoutMs?: number;
  /** Retries after the first attempt (default 4). */
  readonly retries?: number;
  /** First backoff delay, doubled on each retry with jitter (default 250 ms), capped at maxRetryDelayMs. */
  readonly retryDelayMs?: number;
  /** Longest wait between attempts, Retry-After included (default 30 s); a longer Retry-After fails at once. */
  readonly maxRetryDelayMs?: number;
}

export interface ClientOptions extends ClientTuning {
  readonly plainHttp?: boolean;
  readonly hostsDir?: string;
  readonly credentials?: CredentialsFunction;
  readonly concurrency?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A counting semaphore: at most `size` holders. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active >= this.size) {
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(go);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new CancelledError('cancelled while waiting for a connection slot', { cause: signal?.reason }));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(go);
      });
    } else {
      this.active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }
}

export interface RegistryRequest {
  readonly method: string;
  /** Path and query below the origin (`/v2/<repo>/blobs/<digest>`), or an absolute URL (upload locations). */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  readonly contentLength?: number;
  /** Token scopes this request needs (`repository:<name>:pull`). */
  readonly scopes: readonly string[];
  readonly signal?: AbortSignal;
  /** What the request is about, for messages (`manifest test/repo:latest`). */
  readonly what: string;
  /** Follow redirects (default true). */
  readonly redirects?: boolean;
}

const DEFAULT_USER_AGENT = 'berth/0.1';
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Whether an error of one attempt is worth another (a dropped or stalled connection; never a cancel). */
export function isRetryableError(err: unknown): boolean {
  if (isCancelled(err)) return false;
  if (err instanceof IdleTimeoutError) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  const message = (err as Error).message ?? '';
  return message === 'aborted' || message === 'socket hang up' || /premature close/i.test(message);
}

/** Seconds or an HTTP date, as ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CancelledError('cancelled', { cause: signal.reason }));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError('cancelled', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A short description of a failed connection (the socket's message, or the TLS reason). */
export function describeConnectionError(err: unknown): string {
  const e = err as { message?: string; code?: string; reason?: string };
  return (e.reason ? `tls: ${e.reason}` : (e.message ?? String(err))).split('\n')[0]!.trim() + (e.code && !e.message?.includes(e.code) ? ` (${e.code})` : '');
}

/** The first `message` of a distribution error body (`{"errors":[{"code","message"}]}`), as `: <message>`. */
export function registryMessage(body: Buffer | string): string {
  try {
    const parsed = JSON.parse(body.toString()) as { errors?: { code?: string; message?: string }[] };
    const first = parsed.errors?.[0];
    return first?.message ? `: ${first.code ? `${first.code}: ` : ''}${first.message}` : '';
  } catch {
    return '';
  }
}

export class RegistryClient {
  readonly authorizer: Authorizer;
  private readonly endpoints = new Map<string, Endpoint[]>();
  private readonly tokenAgents = createAgents();
  private readonly idleTimeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly headers: Readonly<Record<string, string>>;

  constructor(private readonly options: ClientOptions = {}) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.retries = options.retries ?? 4;
    this.retryDelayMs = options.retryDelayMs ?? 250;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    const lower = Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    this.headers = { 'user-agent': DEFAULT_USER_AGENT, ...lower };
    if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1)) {
      throw new InvalidArgumentError(`concurrency must be a positive integer, not ${options.concurrency}`);
    }
    const credentials = options.credentials ?? dockerConfigCredentials();
    this.authorizer = new Authorizer(credentials, async ({ method, url, authorization, form }) => {
      const res = await send(this.tokenAgents, {
        method,
        url,
        headers: { ...this.headers, ...(form !== undefined ? { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } : {}) },
        ...(authorization ? { authorization } : {}),
        ...(form !== undefined ? { body: Buffer.from(form) } : {}),
        idleTimeoutMs: this.idleTimeoutMs,
      }).catch((err: unknown) => {
        throw new UnavailableError(`cannot reach token server ${url.origin}: ${describeConnectionError(err)}`, { cause: err });
      });
      return { status: res.status, statusText: res.statusText, body: await readBody(res, 1 << 20) };
    });
  }

  /** The endpoints for a registry host (mirrors first), with `capability`. */
  hosts(host: string, capability: HostCapability | readonly HostCapability[]): Endpoint[] {
    let all = this.endpoints.get(host);
    if (!all) {
      all = configureHosts(host, { plainHttp: this.options.plainHttp, hostsDir: this.options.hostsDir }).map((h) => {
        const tls = h.scheme === 'https' || h.tls.ca.length > 0 || h.tls.client.length > 0 ? tlsAgentOptions(h.tls) : { rejectUnauthorized: true };
        return { ...h, agents: createAgents(tls), limit: new Semaphore(this.options.concurrency ?? 3), origin: `${h.scheme}://${h.host}` };
      });
      this.endpoints.set(host, all);
    }
    const caps = typeof capability === 'string' ? [capability] : capability;
    return all.filter((h) => caps.every((c) => h.capabilities.has(c)));
  }

  /** Closes every kept-alive connection. */
  close(): void {
    for (const list of this.endpoints.values()) for (const ep of list) destroyAgents(ep.agents);
    this.endpoints.clear();
    destroyAgents(this.tokenAgents);
  }

  /**
   * One request to an endpoint, with auth, retries and the endpoint's concurrency slot (held until the response
   * body is consumed or destroyed). Resolves with any final status: the caller decides what 404 means; use
   * `failure()` for the rest.
   */
  async request(ep: Endpoint, req: RegistryRequest): Promise<HttpResponse> {
    const url = /^https?:\/\//.test(req.path) ? new URL(req.path) : new URL(`${ep.origin}${req.path}`);
    const sameOrigin = url.origin === ep.origin;
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    let authRounds = 0;
    for (let attempt = 0; ; attempt++) {
      const release = await ep.limit.acquire(req.signal);
      let res: HttpResponse;
      let authorization: string | undefined;
      try {
        authorization = sameOrigin ? await this.authorizer.authorize(ep.host, req.scopes) : undefined;
        res = await send(ep.agents, {
          method: req.method,
          url,
          headers: { ...this.headers, ...flatHeaders(ep.headers), ...req.headers },
          ...(authorization ? { authorization } : {}),
          ...(req.body !== undefined ? { body: req.body } : {}),
          ...(req.contentLength !== undefined ? { contentLength: req.contentLength } : {}),
          ...(req.signal ? { signal: req.signal } : {}),
          idleTimeoutMs: this.idleTimeoutMs,
          maxRedirects: req.redirects === false ? 0 : 10,
        });
      } catch (err) {
        release();
        if (isRetryableError(err) && attempt < this.retries && replayable) {
          await sleep(this.backoff(attempt), req.signal);
          continue;
        }
        if (isCancelled(err) || err instanceof IdleTimeoutError || (err as { errdef?: string }).errdef !== undefined) throw err;
        const hint = ep.scheme === 'https' ? ' (use --plain-http for a registry without TLS)' : '';
        throw new UnavailableError(`cannot reach registry ${ep.host}: ${req.method} ${url.href}: ${describeConnectionError(err)}${hint}`, { cause: err });
      }
      res.body.once('close', release);
      if (res.status === 401 && sameOrigin && authRounds < 3) {
        res.body.resume();
        const retry = await this.authorizer.challenged(ep.host, res.headers['www-authenticate'], authorization !== undefined);
        if (retry && replayable) {
          authRounds++;
          attempt--;
          continue;
        }
        return res;
      }
      if (RETRY_STATUS.has(res.status) && attempt < this.retries && replayable) {
        const after = retryAfterMs(firstHeader(res.headers['retry-after']));
        if (after === undefined || after <= this.maxRetryDelayMs) {
          res.body.resume();
          await sleep(after ?? this.backoff(attempt), req.signal);
          continue;
        }
      }
      return res;
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** attempt);
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  /** The errdef for a response that ends the request (the body is read for the registry's message). */
  async failure(ep: Endpoint, req: Pick<RegistryRequest, 'method' | 'what'>, res: HttpResponse, sentAuthorization?: boolean): Promise<Error> {
    const body = req.method === 'HEAD' ? Buffer.alloc(0) : await readBody(res, 64 << 10).catch(() => Buffer.alloc(0));
    const where = `${req.method} ${res.url.origin}${res.url.pathname}`;
    const message = `${req.what}: ${where}: ${res.status} ${res.statusText}${registryMessage(body)}`;
    switch (res.status) {
      case 401: {
        const sent = sentAuthorization ?? this.authorizer.sendsCredentials(ep.host);
        const how = sent
          ? 'credentials were sent and refused'
          : 'no credentials were sent (give them as user:secret or in ~/.docker/config.json)';
        return new UnauthenticatedError(`registry ${ep.host}: ${message}: ${how}`);
      }
      case 403:
        return new PermissionDeniedError(`registry ${ep.host}: ${message}`);
      case 404:
        return new NotFoundError(`${req.what}: not found in registry ${ep.host}`);
      case 429: {
        const after = firstHeader(res.headers['retry-after']);
        return new ResourceExhaustedError(`registry ${ep.host}: ${message}: too many requests${after ? ` (retry after ${after})` : ''}`);
      }
      default:
        return res.status >= 500 || res.status === 408 ? new UnavailableError(`registry ${ep.host}: ${message}`) : new UnknownError(`registry ${ep.host}: ${message}`);
    }
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function flatHeaders(headers: Readonly<Record<string, readonly string[]>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v.join(', ')]));
}
