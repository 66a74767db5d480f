// A small in-memory OCI distribution server for the registry client's unit tests (node:http or node:https on
// 127.0.0.1): manifests by tag or digest, blobs with Range, uploads (POST, PATCH, PUT, cross-repository mount),
// every request logged with its Authorization header, and a hook that can answer any request first (challenges,
// stalls, 429s, redirects). Not built into dist.
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface LoggedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
}

export interface FakeRegistryOptions {
  /** Serve https with these options (key, cert, ca, requestCert...). */
  readonly tls?: HttpsServerOptions;
  /** Answer HEAD of manifests without Docker-Content-Digest (the client must GET and digest). */
  readonly noDigestHeader?: boolean;
  /** Ignore Range on blobs (answer 200 with the whole blob). */
  readonly ignoreRange?: boolean;
  /** Answers first; return true when it handled the request. */
  readonly hook?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean | Promise<boolean>;
}

export interface FakeRegistry {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly requests: LoggedRequest[];
  readonly blobs: Map<string, Buffer>;
  /** `<repo>@<digest>` and `<repo>:<tag>` to the manifest. */
  readonly manifests: Map<string, { mediaType: string; body: Buffer }>;
  /** Repositories each blob is in (mounts need the source to hold it). */
  readonly blobRepos: Map<string, Set<string>>;
  addBlob(repo: string, data: Buffer): string;
  addManifest(repo: string, tag: string | undefined, mediaType: string, body: Buffer | object): string;
  close(): Promise<void>;
}

export const digestOf = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function notFound(res: ServerResponse, code = 'BLOB_UNKNOWN'): void {
  json(res, 404, { errors: [{ code, message: 'unknown' }] });
}

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const requests: LoggedRequest[] = [];
  const blobs = new Map<string, Buffer>();
  const blobRepos = new Map<string, Set<string>>();
  const manifests = new Map<string, { mediaType: string; body: Buffer }>();
  const uploads = new Map<string, { repo: string; parts: Buffer[] }>();
  let nextUpload = 0;
  const sockets = new Set<Socket>();

  const addBlob = (repo: string, data: Buffer) => {
    const digest = digestOf(data);
    blobs.set(digest, data);
    if (!blobRepos.has(digest)) blobRepos.set(digest, new Set());
    blobRepos.get(digest)!.add(repo);
    return digest;
  };
  const addManifest = (repo: string, tag: string | undefined, mediaType: string, body: Buffer | object) => {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const digest = digestOf(bytes);
    manifests.set(`${repo}@${digest}`, { mediaType, body: bytes });
    if (tag !== undefined) manifests.set(`${repo}:${tag}`, { mediaType, body: bytes });
    return digest;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const body = Buffer.concat(parts);
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (options.hook && (await options.hook(req, res, body))) return;
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (path === '/v2/' || path === '/v2') return json(res, 200, {});
    let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (m) {
      const [, repo, ref] = m as unknown as [string, string, string];
      const key = ref.includes(':') ? `${repo}@${ref}` : `${repo}:${ref}`;
      if (req.method === 'PUT') {
        const type = req.headers['content-type'] ?? 'application/octet-stream';
        const digest = addManifest(repo, ref.includes(':') ? undefined : ref, type, body);
        res.writeHead(201, { location: `/v2/${repo}/manifests/${digest}`, 'docker-content-digest': digest, 'content-length': 0 });
        return res.end();
      }
      const found = manifests.get(key);
      if (!found) return notFound(res, 'MANIFEST_UNKNOWN');
      const headers: Record<string, string | number> = { 'content-type': found.mediaType, 'content-length': found.body.length };
      if (!options.noDigestHeader) headers['docker-content-digest'] = digestOf(found.body);
      res.writeHead(200, headers);
      return res.end(req.method === 'HEAD' ? undefined : found.body);
    }
    m = /^\/v2\/(.+)\/blobs\/uploads\/?([^/]*)$/.exec(path);
    if (m) {
      const [, repo, id] = m as unknown as [string, string, string];
      if (req.method === 'POST') {
        const mount = url.searchParams.get('mount');
        const from = url.searchParams.get('from');
        if (mount && from && blobRepos.get(mount)?.has(from)) {
          blobRepos.get(mount)!.add(repo);
          res.writeHead(201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount, 'content-length': 0 });
          return res.end();
        }
        const uid = `u${nextUpload++}`;
        uploads.set(uid, { repo, parts: [] });
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${uid}?state=s`, range: '0-0', 'content-length': 0 });
        return res.end();
      }
      const upload = uploads.get(id);
      if (!upload) return json(res, 404, { errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'unknown upload' }] });
      if (req.method === 'PATCH') {
        const have = upload.parts.reduce((n, p) => n + p.length, 0);
        const range = req.headers['content-range'];
        if (range !== undefined && range !== `${have}-${have + body.length - 1}`) {
          return json(res, 416, { errors: [{ code: 'BLOB_UPLOAD_INVALID', message: `range ${range} but have ${have}` }] });
        }
        upload.parts.push(body);
        const total = have + body.length;
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}?state=s${total}`, range: `0-${total - 1}`, 'content-length': 0 });
        return res.end();
      }
      if (req.method === 'PUT') {
        upload.parts.push(body);
        const data = Buffer.concat(upload.parts);
        const digest = digestOf(data);
        if (digest !== url.searchParams.get('digest')) return json(res, 400, { errors: [{ code: 'DIGEST_INVALID', message: 'digest mismatch' }] });
        uploads.delete(id);
        addBlob(upload.repo, data);
        res.writeHead(201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': 0 });
        return res.end();
      }
    }
    m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
    if (m) {
      const [, repo, digest] = m as unknown as [string, string, string];
      const data = blobs.get(digest);
      if (!data || !blobRepos.get(digest)?.has(repo)) return notFound(res);
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (range && !options.ignoreRange) {
        const start = Number(range[1]);
        if (start >= data.length) {
          res.writeHead(416, { 'content-range': `bytes */${data.length}` });
          return res.end();
        }
        res.writeHead(206, { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, 'content-length': data.length - start, 'docker-content-digest': digest });
        return res.end(req.method === 'HEAD' ? undefined : data.subarray(start));
      }
      res.writeHead(200, { 'content-length': data.length, 'docker-content-digest': digest, 'content-type': 'application/octet-stream' });
      return res.end(req.method === 'HEAD' ? undefined : data);
    }
    return notFound(res, 'NAME_UNKNOWN');
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { errors: [{ code: 'UNKNOWN', message: String(err) }] });
      else res.destroy();
    });
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, listener) : createHttpServer(listener);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    requests,
    blobs,
    manifests,
    blobRepos,
    addBlob,
    addManifest,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads an async iterable of bytes whole. */
export async function collectBytes(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of source) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}
