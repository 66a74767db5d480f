// A small loopback registry of the project's own that implements the OCI distribution spec 1.1 referrers API
// (Debian's docker-registry has none): what the artifact tests need, in memory, and honest: it serves what was
// pushed (blobs by digest, checked; manifests by tag and digest) and lists as referrers of a digest exactly the
// pushed manifests whose `subject` names it, with their artifactType and annotations, filtered by `?artifactType=`
// (then `OCI-Filters-Applied: artifactType`). A manifest PUT with a subject answers `OCI-Subject: <digest>`, as the
// spec asks of registries with the API. `requests` records each request (method and path) for assertions.
//
//   const server = await startReferrersRegistry();   // 127.0.0.1:<port>
//   ... push to `${server.host}/test/repo:tag` (plain HTTP) ...
//   await server.stop();
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReferrersRegistry {
  readonly host: string;
  readonly requests: { readonly method: string; readonly path: string }[];
  /** Page size of referrers answers (Link: rel="next" beyond it); default: everything on one page. */
  pageSize: number | undefined;
  stop(): Promise<void>;
}

const INDEX = 'application/vnd.oci.image.index.v1+json';
const digestOf = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

interface Manifest {
  readonly mediaType: string;
  readonly bytes: Buffer;
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.once('end', () => resolve(Buffer.concat(parts)));
    req.once('error', reject);
  });
}

function error(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message }] }));
}

export async function startReferrersRegistry(): Promise<ReferrersRegistry> {
  const blobs = new Map<string, Buffer>();
  /** repository -> digest -> manifest */
  const manifests = new Map<string, Map<string, Manifest>>();
  /** repository -> tag -> digest */
  const tags = new Map<string, Map<string, string>>();
  const uploads = new Map<string, Buffer[]>();
  const requests: { method: string; path: string }[] = [];
  const state: { pageSize: number | undefined } = { pageSize: undefined };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ method: req.method ?? '', path: `${url.pathname}${url.search}` });
    const body = await readAll(req);
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/.exec(url.pathname);
    const upload = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(url.pathname);
    if (upload) {
      const [, repo, id] = upload;
      if (req.method === 'POST' && id === '') {
        const session = randomBytes(8).toString('hex');
        uploads.set(session, []);
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${session}`, 'content-length': '0' }).end();
        return;
      }
      const parts = uploads.get(id!);
      if (!parts) return error(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'no such upload');
      if (req.method === 'PATCH') {
        parts.push(body);
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}`, 'content-length': '0' }).end();
        return;
      }
      if (req.method === 'PUT') {
        parts.push(body);
        const data = Buffer.concat(parts);
        const expected = url.searchParams.get('digest');
        if (expected !== digestOf(data)) return error(res, 400, 'DIGEST_INVALID', 'digest does not match');
        uploads.delete(id!);
        blobs.set(expected, data);
        res.writeHead(201, { location: `/v2/${repo}/blobs/${expected}`, 'docker-content-digest': expected, 'content-length': '0' }).end();
        return;
      }
      return error(res, 405, 'UNSUPPORTED', 'method');
    }
    if (!m) return error(res, 404, 'NOT_FOUND', 'no route');
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'blobs') {
      const data = blobs.get(ref);
      if (!data) return error(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(data.length), 'docker-content-digest': ref });
      res.end(req.method === 'HEAD' ? undefined : data);
      return;
    }
    const repoManifests = manifests.get(repo) ?? new Map<string, Manifest>();
    const repoTags = tags.get(repo) ?? new Map<string, string>();
    if (kind === 'referrers') {
      if (!manifests.has(repo)) return error(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
      const artifactType = url.searchParams.get('artifactType');
      const all: object[] = [];
      for (const [digest, stored] of repoManifests) {
        const parsed = JSON.parse(stored.bytes.toString()) as { subject?: { digest?: string }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
        if (parsed.subject?.digest !== ref) continue;
        const type = parsed.artifactType ?? parsed.config?.mediaType;
        if (artifactType && type !== artifactType) continue;
        all.push({ mediaType: stored.mediaType, digest, size: stored.bytes.length, ...(parsed.annotations ? { annotations: parsed.annotations } : {}), ...(type ? { artifactType: type } : {}) });
      }
      const start = Number(url.searchParams.get('start') ?? '0');
      const size = state.pageSize ?? all.length;
      const page = all.slice(start, start + Math.max(size, 1));
      const headers: Record<string, string> = { 'content-type': INDEX };
      if (artifactType) headers['oci-filters-applied'] = 'artifactType';
      if (start + page.length < all.length) {
        const next = new URLSearchParams(url.searchParams);
        next.set('start', String(start + page.length));
        headers.link = `<${url.pathname}?${next.toString()}>; rel="next"`;
      }
      res.writeHead(200, headers).end(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: page }));
      return;
    }
    // manifests
    if (req.method === 'PUT') {
      const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      let parsed: { subject?: { digest?: string }; config?: { digest?: string }; layers?: { digest?: string }[]; manifests?: { digest?: string }[] };
      try {
        parsed = JSON.parse(body.toString()) as typeof parsed;
      } catch {
        return error(res, 400, 'MANIFEST_INVALID', 'not JSON');
      }
      const known = (d: string | undefined) => d !== undefined && (blobs.has(d) || repoManifests.has(d));
      for (const d of [parsed.config?.digest, ...(parsed.layers ?? []).map((l) => l.digest), ...(parsed.manifests ?? []).map((l) => l.digest)]) {
        if (d !== undefined && !known(d)) return error(res, 400, 'MANIFEST_BLOB_UNKNOWN', `blob unknown: ${d}`);
      }
      const digest = digestOf(body);
      if (ref.startsWith('sha256:') && ref !== digest) return error(res, 400, 'DIGEST_INVALID', 'digest does not match');
      repoManifests.set(digest, { mediaType, bytes: body });
      manifests.set(repo, repoManifests);
      if (!ref.startsWith('sha256:')) {
        repoTags.set(ref, digest);
        tags.set(repo, repoTags);
      }
      const headers: Record<string, string> = { location: `/v2/${repo}/manifests/${digest}`, 'docker-content-digest': digest, 'content-length': '0' };
      if (parsed.subject?.digest) headers['oci-subject'] = parsed.subject.digest;
      res.writeHead(201, headers).end();
      return;
    }
    const digest = ref.startsWith('sha256:') ? ref : repoTags.get(ref);
    const stored = digest !== undefined ? repoManifests.get(digest) : undefined;
    if (!stored || digest === undefined) return error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    if (req.method === 'DELETE') {
      repoManifests.delete(digest);
      for (const [t, d] of repoTags) if (d === digest) repoTags.delete(t);
      res.writeHead(202, { 'content-length': '0' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': stored.mediaType, 'content-length': String(stored.bytes.length), 'docker-content-digest': digest });
    res.end(req.method === 'HEAD' ? undefined : stored.bytes);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) error(res, 500, 'UNKNOWN', String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    get pageSize() {
      return state.pageSize;
    },
    set pageSize(n: number | undefined) {
      state.pageSize = n;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
