// JSON extensions against a real berthd: schemas registered through berth's Schemas service (and from a config
// file), values refused through containerd's Containers.Create/Update naming the JSON pointer, revisions under
// concurrent patches, durability under SIGKILL during a stream of updates, and indexed queries over 10,000
// containers. Requests go over gRPC with grpc-js (ctr has no extensions commands); `ctr containers info` shows what
// berth stores.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import { serviceDefinition, ServiceNames } from '@berth/api';
import { containersToken, extensionSchemasToken, OCI_SPEC_TYPE_URL } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import extensionsJsonPlugin from '@berth/plugin-extensions-json';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, hasCtr, hasRoot, startBerthd, type Berthd } from './harness.js';

const CONTAINERS = ServiceNames.Containers;
const SCHEMAS = ServiceNames.ExtensionSchemas;
const EXTENSIONS = ServiceNames.Extensions;
const INVALID_ARGUMENT = 3;
const FAILED_PRECONDITION = 9;
const OWNERSHIP = 'acme.io/ownership';

const ownershipSchema = {
  type: 'object',
  required: ['team'],
  properties: {
    team: { type: 'string', minLength: 1 },
    replicas: { type: 'integer', minimum: 1 },
    owner: { type: 'object', properties: { email: { type: 'string', format: 'email' } } },
  },
};

/** One grpc-js channel per service for the whole test, namespaced per call. */
class Rpc {
  private readonly clients = new Map<string, Client & Record<string, Function>>();
  constructor(private readonly address: string) {}

  call<T = any>(service: string, method: string, request: unknown, namespace = 'default'): Promise<T> {
    let client = this.clients.get(service);
    if (!client) {
      const Ctor = makeGenericClientConstructor(serviceDefinition(service) as never, service);
      client = new Ctor(`unix://${this.address}`, credentials.createInsecure()) as Client & Record<string, Function>;
      this.clients.set(service, client);
    }
    const md = new Metadata();
    md.set('containerd-namespace', namespace);
    return new Promise<T>((resolve, reject) => {
      client![method]!.call(client, request, md, { deadline: Date.now() + 20_000 }, (error: ServiceError | null, response: T) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

async function failure(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the call to fail');
}

const json = (typeUrl: string, v: unknown) => ({ type_url: typeUrl, value: Buffer.from(JSON.stringify(v)) });
const parse = (any: { value: Buffer }) => JSON.parse(Buffer.from(any.value).toString('utf8'));
const spec = json(OCI_SPEC_TYPE_URL, { ociVersion: '1.0.2' });
const container = (id: string, extensions: Record<string, unknown> = {}, labels: Record<string, string> = {}) => ({
  id,
  labels,
  runtime: { name: 'io.containerd.runc.v2' },
  spec,
  extensions,
});

describe.skipIf(!hasRoot() || !hasCtr())('JSON extensions against berthd', () => {
  let daemon: Berthd;
  let rpc: Rpc;
  let files: string;

  beforeAll(async () => {
    files = await mkdtemp(join(tmpdir(), 'berth-ext-schemas-'));
    await writeFile(join(files, 'quota.json'), JSON.stringify({ name: 'acme.io/quota', schema: { type: 'object', properties: { cpu: { type: 'number' } }, additionalProperties: false } }));
    daemon = await startBerthd({ logLevel: 'info', config: `[plugins."io.berth.extensions.v1.json"]\nschemas = ["${join(files, 'quota.json')}"]` });
    rpc = new Rpc(daemon.address);
  });
  afterAll(async () => {
    rpc?.close();
    await daemon?.stop();
    if (files) await rm(files, { recursive: true, force: true });
  });

  it('registers schemas; Containers.Create and Update refuse a violating value with InvalidArgument naming its JSON pointer', async () => {
    const ns = 'ext-validate';
    const { schemas } = await rpc.call(SCHEMAS, 'List', {});
    expect(schemas.map((s: { name: string; source: string; version: number }) => [s.name, s.source, s.version])).toEqual([['acme.io/quota', 'config', 1]]);
    const { schema } = await rpc.call(SCHEMAS, 'Register', { name: OWNERSHIP, schema: JSON.stringify(ownershipSchema), indexed_paths: ['team'] });
    expect(schema).toMatchObject({ name: OWNERSHIP, version: 1, source: 'api', indexed_paths: ['team'] });

    const bad = await failure(rpc.call(CONTAINERS, 'Create', { container: container('c1', { [OWNERSHIP]: json(OWNERSHIP, { team: 7, replicas: 0 }) }) }, ns));
    expect(bad.code).toBe(INVALID_ARGUMENT);
    expect(bad.details).toContain('/team: must be string');
    expect(bad.details).toContain('/replicas: must be >= 1');
    const quota = await failure(rpc.call(CONTAINERS, 'Create', { container: container('c1', { 'acme.io/quota': json('acme.io/quota', { cpu: 1, gpu: 1 }) }) }, ns));
    expect([quota.code, quota.details]).toEqual([INVALID_ARGUMENT, expect.stringContaining('/gpu: property is not allowed')]);
    const notJson = await failure(rpc.call(CONTAINERS, 'Create', { container: container('c1', { [OWNERSHIP]: { type_url: OWNERSHIP, value: Buffer.from('{team') } }) }, ns));
    expect([notJson.code, notJson.details]).toEqual([INVALID_ARGUMENT, expect.stringContaining('value is not JSON')]);
    expect((await rpc.call(CONTAINERS, 'List', {}, ns)).containers).toEqual([]);

    // Valid values are stored; an unregistered name is stored untouched, as containerd does.
    const raw = { type_url: 'other.io/proto', value: Buffer.from([0x0a, 0x02, 0xff, 0x00]) };
    await rpc.call(CONTAINERS, 'Create', { container: container('c1', { [OWNERSHIP]: json(OWNERSHIP, { team: 'payments' }), 'other.io/proto': raw }) }, ns);
    const update = await failure(
      rpc.call(CONTAINERS, 'Update', { container: container('c1', { [OWNERSHIP]: json(OWNERSHIP, { team: '', owner: { email: 'nope' } }) }), update_mask: { paths: [`extensions.${OWNERSHIP}`] } }, ns),
    );
    expect(update.code).toBe(INVALID_ARGUMENT);
    expect(update.details).toContain('/team: must NOT have fewer than 1 characters');
    expect(update.details).toContain('/owner/email: must match format "email"');
    const got = (await rpc.call(CONTAINERS, 'Get', { id: 'c1' }, ns)).container;
    expect(parse(got.extensions[OWNERSHIP])).toEqual({ team: 'payments' });
    expect(Buffer.from(got.extensions['other.io/proto'].value)).toEqual(raw.value);
    const ext = await rpc.call(EXTENSIONS, 'Get', { container_id: 'c1', name: OWNERSHIP }, ns);
    expect(ext.extension.revision).toBe(1);

    // The berth service refuses the same way, and ctr shows what is stored.
    const set = await failure(rpc.call(EXTENSIONS, 'Set', { container_id: 'c1', name: OWNERSHIP, value: json(OWNERSHIP, {}) }, ns));
    expect([set.code, set.details]).toEqual([INVALID_ARGUMENT, expect.stringContaining('/team: required property is missing')]);
    const info = expectOk(await daemon.ctr(['containers', 'info', 'c1'], { namespace: ns }), 'ctr containers info');
    expect(info.stdout).toContain(OWNERSHIP);

    // An incompatible replacement names the container that holds a refused value.
    const narrower = { ...ownershipSchema, properties: { ...ownershipSchema.properties, team: { enum: ['search'] } } };
    const refused = await failure(rpc.call(SCHEMAS, 'Register', { name: OWNERSHIP, schema: JSON.stringify(narrower), indexed_paths: ['team'] }));
    expect([refused.code, refused.details]).toEqual([FAILED_PRECONDITION, expect.stringContaining(`${ns}/c1 (/team: must be equal to one of the allowed values)`)]);
    expect((await rpc.call(SCHEMAS, 'Get', { name: OWNERSHIP })).schema.version).toBe(1);
  });

  it('two concurrent patches with the same revision: one wins, the other is FailedPrecondition with the current revision, nothing is lost', async () => {
    const ns = 'ext-race';
    await rpc.call(CONTAINERS, 'Create', { container: container('c1') }, ns);
    const first = await rpc.call(EXTENSIONS, 'Set', { container_id: 'c1', name: OWNERSHIP, value: json(OWNERSHIP, { team: 'payments' }), expected_revision: { value: 0 } }, ns);
    const rev = first.extension.revision;
    const patches = ['{"replicas":3}', '{"owner":{"email":"a@example.com"}}'];
    const outcomes = await Promise.allSettled(patches.map((patch) => rpc.call(EXTENSIONS, 'Patch', { container_id: 'c1', name: OWNERSHIP, patch, expected_revision: { value: rev } }, ns)));
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const won = outcomes.findIndex((o) => o.status === 'fulfilled');
    const lost = (outcomes[1 - won] as PromiseRejectedResult).reason as ServiceError;
    expect(lost.code).toBe(FAILED_PRECONDITION);
    expect(lost.details).toContain(String(rev + 1));
    expect((outcomes[won] as PromiseFulfilledResult<any>).value.extension.revision).toBe(rev + 1);
    // The loser retries on the revision it was told; both changes are then there.
    const retried = await rpc.call(EXTENSIONS, 'Patch', { container_id: 'c1', name: OWNERSHIP, patch: patches[1 - won], expected_revision: { value: rev + 1 } }, ns);
    expect(retried.extension.revision).toBe(rev + 2);
    const now = await rpc.call(EXTENSIONS, 'Get', { container_id: 'c1', name: OWNERSHIP }, ns);
    expect(parse(now.extension.value)).toEqual({ team: 'payments', replicas: 3, owner: { email: 'a@example.com' } });
    // Many writers on one revision: exactly one wins each round.
    const round = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => rpc.call(EXTENSIONS, 'Patch', { container_id: 'c1', name: OWNERSHIP, patch: `{"replicas":${i + 1}}`, expected_revision: { value: rev + 2 } }, ns)),
    );
    expect(round.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(round.filter((o) => o.status === 'rejected').every((o) => ((o as PromiseRejectedResult).reason as ServiceError).code === FAILED_PRECONDITION)).toBe(true);
  });
});

describe.skipIf(!hasRoot() || !hasCtr())('JSON extensions when berthd is killed during a stream of updates', () => {
  it('leaves every container with the old or the new value, never a mix, and revisions never go back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-ext-kill-'));
    let daemon: Berthd | undefined;
    let rpc: Rpc | undefined;
    try {
      daemon = await startBerthd({ dir, logLevel: 'warn' });
      rpc = new Rpc(daemon.address);
      const ns = 'ext-kill';
      await rpc.call(SCHEMAS, 'Register', {
        name: OWNERSHIP,
        schema: JSON.stringify({ type: 'object', required: ['seq', 'copies'], properties: { seq: { type: 'integer' }, copies: { type: 'array', items: { type: 'integer' } } } }),
      });
      const ids = Array.from({ length: 12 }, (_, i) => `k${i}`);
      // Each value holds its own revision many times over: a torn or mixed value cannot pass the check below.
      const doc = (seq: number) => ({ seq, copies: Array.from({ length: 200 }, () => seq) });
      const acked = new Map<string, number>();
      for (const id of ids) {
        await rpc.call(CONTAINERS, 'Create', { container: container(id, { [OWNERSHIP]: json(OWNERSHIP, doc(1)) }) }, ns);
        acked.set(id, 1);
      }
      let stop = false;
      const writer = async (id: string): Promise<void> => {
        while (!stop) {
          const rev = acked.get(id)!;
          try {
            const r = await rpc!.call(EXTENSIONS, 'Set', { container_id: id, name: OWNERSHIP, value: json(OWNERSHIP, doc(rev + 1)), expected_revision: { value: rev } }, ns);
            acked.set(id, r.extension.revision);
          } catch {
            return; // the daemon is gone
          }
        }
      };
      const writers = ids.map(writer);
      await new Promise((r) => setTimeout(r, 1500));
      const before = new Map(acked);
      await daemon.kill('SIGKILL');
      stop = true;
      await Promise.all(writers);
      rpc.close();
      for (const id of ids) expect(acked.get(id)!, `${id} made progress`).toBeGreaterThan(1);
      expect([...before.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(ids.length * 2);

      daemon = await startBerthd({ dir, logLevel: 'warn' });
      rpc = new Rpc(daemon.address);
      for (const id of ids) {
        const { extension } = await rpc.call(EXTENSIONS, 'Get', { container_id: id, name: OWNERSHIP }, ns);
        const value = parse(extension.value);
        // The acknowledged write, or the one in flight when the daemon died.
        expect([acked.get(id), acked.get(id)! + 1], id).toContain(extension.revision);
        expect(value, id).toEqual(doc(extension.revision));
        const whole = (await rpc.call(CONTAINERS, 'Get', { id }, ns)).container;
        expect(parse(whole.extensions[OWNERSHIP]), id).toEqual(value);
        // The count goes on from there.
        const next = await rpc.call(EXTENSIONS, 'Set', { container_id: id, name: OWNERSHIP, value: json(OWNERSHIP, doc(extension.revision + 1)), expected_revision: { value: extension.revision } }, ns);
        expect(next.extension.revision).toBe(extension.revision + 1);
      }
    } finally {
      rpc?.close();
      await daemon?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe.skipIf(!hasRoot() || !hasCtr())('extension queries over 10,000 containers', () => {
  it('return exactly the matching set, from the index', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-ext-query-'));
    const ns = 'ext-query';
    const N = 10_000;
    const teams = (i: number) => (i % 97 === 0 ? 'payments' : `team-${i % 13}`);
    let daemon: Berthd | undefined;
    let rpc: Rpc | undefined;
    try {
      // Fill the store in-process with the daemon's own plugins (the same root the daemon opens next).
      const host = await createTestHost({ plugins: [contentLocalPlugin, extensionsJsonPlugin, metadataLmdbPlugin], dir });
      try {
        await host.host.get(extensionSchemasToken).register({ name: OWNERSHIP, schema: ownershipSchema, indexedPaths: ['team', 'replicas'] });
        const store = host.host.get(containersToken);
        const op = { namespace: ns, signal: new AbortController().signal };
        for (let start = 0; start < N; start += 500) {
          await Promise.all(
            Array.from({ length: Math.min(500, N - start) }, (_, k) => {
              const i = start + k;
              return store.create(op, {
                id: `c${String(i).padStart(5, '0')}`,
                labels: { parity: i % 2 === 0 ? 'even' : 'odd' },
                runtime: { name: 'io.containerd.runc.v2' },
                spec: { typeUrl: OCI_SPEC_TYPE_URL, value: Buffer.from('{}') },
                extensions: { [OWNERSHIP]: { typeUrl: OWNERSHIP, value: Buffer.from(JSON.stringify({ team: teams(i), replicas: (i % 5) + 1 })) } },
              });
            }),
          );
        }
      } finally {
        await host.close();
      }
      daemon = await startBerthd({ dir, logLevel: 'warn' });
      rpc = new Rpc(daemon.address);
      const ids = async (where: string[]) => ((await rpc!.call(EXTENSIONS, 'Query', { where }, ns)).containers as { id: string }[]).map((c) => c.id).sort();
      const expected = (pred: (i: number) => boolean) =>
        Array.from({ length: N }, (_, i) => i)
          .filter(pred)
          .map((i) => `c${String(i).padStart(5, '0')}`);

      expect(await ids([`ext."${OWNERSHIP}".team==payments`])).toEqual(expected((i) => i % 97 === 0));
      expect(await ids([`extensions."${OWNERSHIP}".team=="payments",ext."${OWNERSHIP}".replicas==3`])).toEqual(expected((i) => i % 97 === 0 && i % 5 === 2));
      expect(await ids([`ext."${OWNERSHIP}".team==payments,labels.parity==even`])).toEqual(expected((i) => i % 97 === 0 && i % 2 === 0));
      expect(await ids([`ext."${OWNERSHIP}".team==payments`, `ext."${OWNERSHIP}".team=="team-3",ext."${OWNERSHIP}".replicas==1`])).toEqual(
        expected((i) => i % 97 === 0 || (i % 13 === 3 && i % 97 !== 0 && i % 5 === 0)),
      );
      expect(await ids([`ext."${OWNERSHIP}".team==nobody`])).toEqual([]);
      // Containerd's List answers the same conditions.
      const listed = (await rpc.call(CONTAINERS, 'List', { filters: [`extensions."${OWNERSHIP}".team==payments`] }, ns)).containers.map((c: { id: string }) => c.id).sort();
      expect(listed).toEqual(expected((i) => i % 97 === 0));
      // A path that is not indexed is refused rather than scanned.
      const notIndexed = await failure(rpc.call(EXTENSIONS, 'Query', { where: [`ext."${OWNERSHIP}".owner.email==x`] }, ns));
      expect(notIndexed.code).toBe(INVALID_ARGUMENT);
    } finally {
      rpc?.close();
      await daemon?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
