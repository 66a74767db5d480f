// The HTTP layer of the registry client: node:http/https with keep-alive agents (one per registry host and TLS
// setting; Node pools sockets per origin inside an agent), redirects followed by hand so that credentials never
// cross an origin, an inactivity timeout on every request (socket idle, headers and body alike), and bodies handed
// out as Node streams. Why node:http and not undici or fetch: see README.md ("HTTP client").
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type AgentOptions as HttpsAgentOptions } from 'node:https';
import type { Readable } from 'node:stream';
import { CancelledError, DeadlineExceededError, UnavailableError } from '@berth/core';

/** An open response: status, headers and the body still to read (consume it or `destroy()` it). */
export interface HttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
  /** Where the response came from, after redirects. */
  readonly url: URL;
  readonly body: IncomingMessage;
}

export type RequestBody = Buffer | (() => Readable | AsyncIterable<Uint8Array>);

export interface HttpRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** Sent only to the origin of `url`: dropped on a redirect to another origin. */
  readonly authorization?: string;
  readonly body?: RequestBody;
  /** Content-Length of a streamed body. */
  readonly contentLength?: number;
  readonly signal?: AbortSignal;
  /** Fail when nothing moves on the connection for this long (headers or body). */
  readonly idleTimeoutMs: number;
  /** Redirects to follow for GET/HEAD (0: return the 3xx). */
  readonly maxRedirects?: number;
}

/** Both agents a registry host needs: the TLS settings apply to its https origins (and to redirects it sends). */
export interface Agents {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
}

export function createAgents(tls: HttpsAgentOptions = {}, maxSockets = 16): Agents {
  const common = { keepAlive: true, maxSockets, keepAliveMsecs: 30_000 };
  return { http: new HttpAgent(common), https: new HttpsAgent({ ...common, ...tls }) };
}

export function destroyAgents(agents: Agents): void {
  agents.http.destroy();
  agents.https.destroy();
}

/** A request that stalled: no bytes for `idleTimeoutMs`. */
export class IdleTimeoutError extends DeadlineExceededError {}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** One request with redirects followed (GET/HEAD only; a 303 becomes a GET). */
export async function send(agents: Agents, req: HttpRequest): Promise<HttpResponse> {
  let url = req.url;
  let method = req.method;
  const origin = req.url.origin;
  const max = req.maxRedirects ?? 10;
  for (let hop = 0; ; hop++) {
    const res = await sendOnce(agents, { ...req, method, url, ...(url.origin === origin ? {} : { authorization: undefined }) });
    const location = res.headers.location;
    if (!REDIRECTS.has(res.status) || location === undefined || (method !== 'GET' && method !== 'HEAD') || max === 0) return res;
    res.body.resume();
    if (hop >= max) throw new UnavailableError(`${req.method} ${req.url.href}: stopped after ${max} redirects`);
    url = new URL(location, url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UnavailableError(`${req.method} ${req.url.href}: redirect to unsupported URL ${url.href}`);
    }
    if (res.status === 303) method = 'GET';
  }
}

function sendOnce(agents: Agents, req: HttpRequest): Promise<HttpResponse> {
  const { url } = req;
  const https = url.protocol === 'https:';
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = typeof v === 'string' ? v : [...v];
  delete headers.authorization;
  if (req.authorization !== undefined) headers.authorization = req.authorization;
  if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
  else if (req.contentLength !== undefined) headers['content-length'] = String(req.contentLength);
  else if (req.body === undefined && (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH')) headers['content-length'] = '0';

  return new Promise<HttpResponse>((resolve, reject) => {
    if (req.signal?.aborted) {
      reject(new CancelledError(`${req.method} ${url.href}: cancelled`, { cause: req.signal.reason }));
      return;
    }
    const make = https ? httpsRequest : httpRequest;
    const cr = make(url, { method: req.method, headers, agent: https ? agents.https : agents.http });
    let response: IncomingMessage | undefined;
    const fail = (err: Error) => {
      cleanup();
      response?.destroy(err);
      cr.destroy(err);
      reject(err);
    };
    const onAbort = () => fail(new CancelledError(`${req.method} ${url.href}: cancelled`, { cause: req.signal?.reason }));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => req.signal?.removeEventListener('abort', onAbort);
    // socket inactivity, through the whole exchange: connect, request body, headers and response body
    cr.setTimeout(req.idleTimeoutMs, () => {
      const err = new IdleTimeoutError(`${req.method} ${url.href}: no data for ${req.idleTimeoutMs} ms`);
      cleanup();
      if (response) response.destroy(err);
      else reject(err);
      cr.destroy(err);
    });
    cr.on('error', (err) => {
      cleanup();
      if (!response) reject(err);
    });
    cr.on('response', (res) => {
      response = res;
      res.once('end', cleanup);
      res.once('close', cleanup);
      resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, url, body: res });
    });
    const body = req.body;
    if (body === undefined) cr.end();
    else if (Buffer.isBuffer(body)) cr.end(body);
    else void pump(body(), cr).catch((err: Error) => cr.destroy(err));
  });
}

async function pump(source: Readable | AsyncIterable<Uint8Array>, dest: import('node:http').ClientRequest): Promise<void> {
  for await (const chunk of source as AsyncIterable<Uint8Array>) {
    if (dest.destroyed) return;
    if (!dest.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          dest.off('drain', done);
          dest.off('close', done);
          resolve();
        };
        dest.on('drain', done);
        dest.on('close', done);
      });
    }
  }
  dest.end();
}

/** Reads a (small) body whole, up to `limit` bytes. */
export async function readBody(res: HttpResponse, limit = 4 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) {
      res.body.destroy();
      throw new UnavailableError(`${res.url.href}: response larger than ${limit} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts, length);
}

/** Drains and drops a body we do not need (keeps the connection reusable). */
export function discard(res: HttpResponse): void {
  res.body.resume();
}

export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
