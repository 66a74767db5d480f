import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { failureOf } from '@berth/core/testing';
import { errdefOf, isNotImplemented } from '@berth/core';

const isUnauthenticated = (err: unknown) => errdefOf(err) === 'unauthenticated';
import { dockerConfigCredentials, parseChallenges, staticCredentials } from './auth.js';
import { collectBytes, type FakeRegistry } from './testing/fake-registry.js';
import { registryTestScope } from './testing/scope.js';

const LAYER = 'application/vnd.oci.image.layer.v1.tar';
const { defer, registry, resolver } = registryTestScope({ retryDelayMs: 10 });

interface Server {
  readonly url: string;
  readonly requests: { url: string; method: string; authorization?: string; body: string }[];
}
async function server(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<Server> {
  const requests: Server['requests'] = [];
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ url: req.url ?? '', method: req.method ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, requests };
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** A token server: tokens for alice:wonderland (or anonymous when allowed), named after the scopes they grant. */
async function tokenServer(options: { anonymous?: boolean; field?: 'token' | 'access_token'; expiresIn?: number } = {}): Promise<Server & { issued: string[] }> {
  const issued: string[] = [];
  const s = await server((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const authorized = req.headers.authorization === basic('alice', 'wonderland');
    if (!authorized && !(options.anonymous && req.headers.authorization === undefined)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"details":"bad credentials"}');
      return;
    }
    const token = `tok-${issued.length}-${url.searchParams.getAll('scope').join('+')}`;
    issued.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ [options.field ?? 'token']: token, ...(options.expiresIn !== undefined ? { expires_in: options.expiresIn } : {}) }));
  });
  return Object.assign(s, { issued });
}

/** A registry hook that wants a Bearer token issued by `tokens` (any issued one) for everything under /v2/. */
function bearerGate(realm: string, issued: string[], service = 'fake-registry') {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const repo = /^\/v2\/(.+?)\/(manifests|blobs)\//.exec(url.pathname)?.[1];
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (token !== undefined && issued.includes(token) && (repo === undefined || token.includes(`repository:${repo}:`))) return false;
    const scope = repo ? `,scope="repository:${repo}:pull"` : '';
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="${service}"${scope}${token ? ',error="invalid_token"' : ''}`, 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    return true;
  };
}

describe('parseChallenges', () => {
  it('reads several challenges with quoted and bare parameters', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push", Basic realm=x')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
    expect(parseChallenges(['Basic realm="a \\"quoted\\" realm"'])).toEqual([{ scheme: 'basic', params: { realm: 'a "quoted" realm' } }]);
    expect(parseChallenges(undefined)).toEqual([]);
  });
});

describe('docker config credentials', () => {
  it('reads auths.<host>.auth (base64) and username/password, by host with or without a scheme; helpers are refused clearly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-dockercfg-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'config.json');
    await writeFile(
      file,
      JSON.stringify({
        auths: {
          'reg.example:5000': { auth: Buffer.from('bob:s3:cret').toString('base64') },
          'https://other.example/v1/': { username: 'carol', password: 'pw' },
          'helped.example': {},
        },
        credHelpers: { 'helped.example': 'pass' },
      }),
    );
    const creds = dockerConfigCredentials(file);
    expect(await creds('reg.example:5000')).toEqual({ username: 'bob', secret: 's3:cret' });
    expect(await creds('other.example')).toEqual({ username: 'carol', secret: 'pw' });
    expect(await creds('unknown.example')).toBeUndefined();
    const err = await failureOf(creds('helped.example'));
    expect(isNotImplemented(err), String(err)).toBe(true);
    expect(err.message).toContain('docker-credential-pass');
    expect(await dockerConfigCredentials(join(dir, 'missing.json'))('reg.example:5000')).toBeUndefined();
  });
});

describe('the challenge flow', () => {
  it('Bearer: fetches a token from the realm with the credentials, service and scope, and reuses it', async () => {
    const tokens = await tokenServer();
    const data = randomBytes(1000);
    const reg = await registry({ hook: (req, res) => bearerGate(`${tokens.url}/token`, tokens.issued)(req, res) });
    const digest = reg.addBlob('test/app', data);
    const fetcher = resolver({ credentials: staticCredentials('alice:wonderland').bind(null) }).fetcher(`${reg.host}/test/app`);
    for (let i = 0; i < 3; i++) expect((await collectBytes((await fetcher.fetch({ mediaType: LAYER, digest, size: data.length })).chunks)).equals(data)).toBe(true);
    expect(tokens.requests).toHaveLength(1);
    const asked = new URL(tokens.requests[0]!.url, 'http://x');
    expect(asked.searchParams.get('service')).toBe('fake-registry');
    expect(asked.searchParams.getAll('scope')).toEqual(['repository:test/app:pull']);
    expect(tokens.requests[0]!.authorization).toBe(basic('alice', 'wonderland'));
    // one 401, then every request with the token
    expect(reg.requests.map((r) => r.headers.authorization ?? 'none')).toEqual(['none', ...Array(3).fill(`Bearer ${tokens.issued[0]}`)]);
  });

  it('Bearer: takes access_token too, anonymously when no credentials are known, and fetches a new one after expiry', async () => {
    const tokens = await tokenServer({ anonymous: true, field: 'access_token', expiresIn: 1 });
    const reg = await registry({ hook: (req, res) => bearerGate(`${tokens.url}/token`, tokens.issued)(req, res) });
    reg.addManifest('test/app', 'v1', 'application/vnd.oci.image.manifest.v1+json', { schemaVersion: 2 });
    const r = resolver({ credentials: async () => undefined });
    await r.resolve(`${reg.host}/test/app:v1`);
    await r.resolve(`${reg.host}/test/app:v1`);
    expect(tokens.requests).toHaveLength(1);
    expect(tokens.requests[0]!.authorization).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 700)); // a 1 s token is renewed half-way (margin)
    await r.resolve(`${reg.host}/test/app:v1`);
    expect(tokens.requests).toHaveLength(2);
  });

  it('Basic: answers a Basic challenge with the credentials; wrong ones are an UnauthenticatedError that says they were sent', async () => {
    const hook = (req: IncomingMessage, res: ServerResponse) => {
      if (req.headers.authorization === basic('alice', 'wonderland')) return false;
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return true;
    };
    const reg = await registry({ hook });
    reg.addManifest('test/app', 'v1', 'application/vnd.oci.image.manifest.v1+json', { schemaVersion: 2 });
    await resolver({ credentials: staticCredentials('alice:wonderland') }).resolve(`${reg.host}/test/app:v1`);

    const wrong = await failureOf(resolver({ credentials: staticCredentials('alice:nope') }).resolve(`${reg.host}/test/app:v1`));
    expect(isUnauthenticated(wrong), String(wrong)).toBe(true);
    expect(wrong.message).toContain(reg.host);
    expect(wrong.message).toContain('credentials were sent and refused');

    const none = await failureOf(resolver({ credentials: async () => undefined }).resolve(`${reg.host}/test/app:v1`));
    expect(isUnauthenticated(none), String(none)).toBe(true);
    expect(none.message).toContain('no credentials were sent');
  });

  it('a token server that refuses the credentials is an UnauthenticatedError naming the user', async () => {
    const tokens = await tokenServer();
    const reg = await registry({ hook: (req, res) => bearerGate(`${tokens.url}/token`, tokens.issued)(req, res) });
    reg.addManifest('test/app', 'v1', 'application/vnd.oci.image.manifest.v1+json', { schemaVersion: 2 });
    const err = await failureOf(resolver({ credentials: staticCredentials('mallory:x') }).resolve(`${reg.host}/test/app:v1`));
    expect(isUnauthenticated(err), String(err)).toBe(true);
    expect(err.message).toMatch(/refused the credentials of "mallory"/);
  });

  it('follows a blob redirect to another origin without the token, and keeps it on the same origin', async () => {
    const tokens = await tokenServer();
    const data = randomBytes(50_000);
    const storage = await server((req, res) => {
      res.writeHead(200, { 'content-length': data.length });
      res.end(data);
    });
    let reg: FakeRegistry | undefined;
    const gate = (realm: string) => bearerGate(realm, tokens.issued);
    reg = await registry({
      hook: (req, res) => {
        if (gate(`${tokens.url}/token`)(req, res)) return true;
        const url = req.url ?? '';
        if (url.includes('/blobs/') && !url.startsWith('/v2/test/app/blobs/moved')) {
          // same origin first, then to the storage origin
          res.writeHead(307, { location: `/v2/test/app/blobs/moved?to=${encodeURIComponent(`${storage.url}/bucket/blob?sig=1`)}` });
          res.end();
          return true;
        }
        if (url.startsWith('/v2/test/app/blobs/moved')) {
          res.writeHead(302, { location: new URL(url, 'http://x').searchParams.get('to') as string });
          res.end();
          return true;
        }
        return false;
      },
    });
    const digest = reg.addBlob('test/app', data);
    const body = await resolver({ credentials: staticCredentials('alice:wonderland') }).fetcher(`${reg.host}/test/app`).fetch({ mediaType: LAYER, digest, size: data.length });
    expect((await collectBytes(body.chunks)).equals(data)).toBe(true);
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]!.authorization).toBeUndefined();
    const moved = reg.requests.find((r) => r.url.startsWith('/v2/test/app/blobs/moved'));
    expect(moved?.headers.authorization).toBe(`Bearer ${tokens.issued[0]}`);
  });
});
