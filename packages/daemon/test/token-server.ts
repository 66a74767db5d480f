// A Bearer token server for the loopback registry (docker's token auth, as distribution 2.8 verifies it), on
// 127.0.0.1, for tests of registry clients:
//
//   const tokens = await startTokenServer({ users: { alice: 'secret' } });
//   const registry = await startRegistry({ tokenServer: tokens });   // challenges: Bearer realm=<tokens.realm>
//   ... a client gets 401 + WWW-Authenticate, asks tokens.realm?service=&scope=, retries with the token ...
//   tokens.requests                                                  // what clients asked for, and who
//   await registry.stop(); await tokens.stop();
//
// Tokens are JWTs signed ES256 with a key made for this server; the header carries the self-signed certificate
// (`x5c`), which the registry verifies against its `rootcertbundle` (the same certificate, `certPath`). Claims:
// iss = `issuer`, aud = `service`, sub = the user, exp/nbf/iat, and `access` granting what was asked for (every
// action asked, when the user authenticated or the server is anonymous). Both ways of asking work: GET with
// `service` and `scope` query parameters (and optional basic auth), and containerd's OAuth2 POST
// (`grant_type=password` with username/password, or `refresh_token`). Wrong credentials get 401.
import { execFile } from 'node:child_process';
import { randomBytes, sign, X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { rmSync } from 'node:fs';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface TokenAccess {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

export interface TokenRequest {
  readonly method: 'GET' | 'POST';
  readonly service: string | undefined;
  readonly scopes: readonly string[];
  /** The authenticated user, undefined for anonymous requests. */
  readonly user: string | undefined;
  /** The HTTP status the server answered. */
  readonly status: number;
}

export interface TokenServerOptions {
  /** user -> password; without it, anyone gets a token (anonymous pull and push). */
  readonly users?: Readonly<Record<string, string>>;
  /** Token lifetime (default 300 s). */
  readonly expiresInSeconds?: number;
}

export interface TokenServer {
  /** `http://127.0.0.1:PORT/token`, the realm the registry sends in its challenge. */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM of the certificate the tokens are signed under (the registry's rootcertbundle). */
  readonly certPath: string;
  /** Every token request so far, in order. */
  readonly requests: readonly TokenRequest[];
  /** A token for this access, as the server would grant it (for the harness's own pushes). */
  issue(access: readonly TokenAccess[], subject?: string): string;
  stop(): Promise<void>;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

// Last resort, as for registries: the key and certificate of a server a test forgot to stop go with the process.
const liveDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/** `repository:test/x:pull,push` -> access; unknown shapes are ignored, as a registry would refuse them anyway. */
function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

function basicUser(req: IncomingMessage): { user: string; password: string } | undefined {
  const header = req.headers.authorization;
  if (!header?.toLowerCase().startsWith('basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('token request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

class LoopbackTokenServer implements TokenServer {
  readonly service = 'berth-test-registry';
  readonly issuer = 'berth-test-token-server';
  readonly requests: TokenRequest[] = [];
  readonly realm: string;
  private readonly refreshTokens = new Map<string, string>();

  constructor(
    private readonly server: Server,
    private readonly dir: string,
    readonly certPath: string,
    private readonly key: KeyObject,
    private readonly certDer: Buffer,
    private readonly options: TokenServerOptions,
  ) {
    this.realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    server.on('request', (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'BAD_REQUEST', message: err instanceof Error ? err.message : String(err) }] }));
      });
    });
  }

  issue(access: readonly TokenAccess[], subject = ''): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [this.certDer.toString('base64')] };
    const claims = {
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      exp: now + (this.options.expiresInSeconds ?? 300),
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: this.key, dsaEncoding: 'ieee-p1363' });
    return `${signingInput}.${b64url(signature)}`;
  }

  private authenticate(user: string | undefined, password: string | undefined): boolean {
    const users = this.options.users;
    if (!users) return true;
    return user !== undefined && Object.hasOwn(users, user) && users[user] === password;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.realm);
    const reply = (status: number, body: object, method: 'GET' | 'POST', service: string | undefined, scopes: string[], user: string | undefined) => {
      this.requests.push({ method, service, scopes, user, status });
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 401 ? { 'www-authenticate': 'Basic realm="berth-test-token-server"' } : {}) });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    const grant = (method: 'GET' | 'POST', service: string | undefined, scopes: string[], user: string | undefined, withRefresh: boolean) => {
      if (service !== undefined && service !== this.service) {
        reply(400, { errors: [{ code: 'BAD_REQUEST', message: `unknown service ${service}` }] }, method, service, scopes, user);
        return;
      }
      const access = scopes.flatMap((s) => s.split(' ')).map(parseScope).filter((a): a is TokenAccess => a !== undefined);
      const token = this.issue(access, user ?? '');
      const body: Record<string, unknown> = { token, access_token: token, expires_in: this.options.expiresInSeconds ?? 300, issued_at: new Date().toISOString() };
      if (withRefresh && user !== undefined) {
        const refresh = randomBytes(16).toString('hex');
        this.refreshTokens.set(refresh, user);
        body.refresh_token = refresh;
      }
      reply(200, body, method, service, scopes, user);
    };
    if (req.method === 'GET') {
      const scopes = url.searchParams.getAll('scope');
      const service = url.searchParams.get('service') ?? undefined;
      const basic = basicUser(req);
      if ((basic || this.options.users) && !this.authenticate(basic?.user, basic?.password)) {
        reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'wrong user name or password' }] }, 'GET', service, scopes, basic?.user);
        return;
      }
      grant('GET', service, scopes, basic?.user, url.searchParams.get('offline_token') === 'true');
      return;
    }
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const scopes = form.getAll('scope');
      const service = form.get('service') ?? undefined;
      const grantType = form.get('grant_type');
      if (grantType === 'password') {
        const user = form.get('username') ?? undefined;
        if (!this.authenticate(user, form.get('password') ?? undefined)) {
          reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'wrong user name or password' }] }, 'POST', service, scopes, user);
          return;
        }
        grant('POST', service, scopes, user, true);
        return;
      }
      if (grantType === 'refresh_token') {
        const user = this.refreshTokens.get(form.get('refresh_token') ?? '');
        if (user === undefined) {
          reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'unknown refresh token' }] }, 'POST', service, scopes, undefined);
          return;
        }
        grant('POST', service, scopes, user, false);
        return;
      }
      reply(400, { errors: [{ code: 'UNSUPPORTED', message: `grant_type ${grantType ?? '(none)'}` }] }, 'POST', service, scopes, undefined);
      return;
    }
    res.writeHead(405).end();
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await rm(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

/** Starts a token server on a free loopback port, with a fresh P-256 key and self-signed certificate (openssl). */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-token-server-'));
  liveDirs.add(dir);
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await execFileAsync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=berth-test-token-server',
    ]);
    const key = createPrivateKey(await readFile(keyPath));
    const certDer = new X509Certificate(await readFile(certPath)).raw;
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new LoopbackTokenServer(server, dir, certPath, key, certDer, options);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw err;
  }
}
