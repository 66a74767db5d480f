import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageCodec, serviceMethod, ServiceNames, type berth } from '@berth/api';
import { LocalEventExchange, type Envelope } from '@berth/core';
import { expectFailure, rpcContext } from '@berth/core/testing';
import { JsonExtensionPolicy, JsonSchemaRegistry } from '@berth/plugin-extensions-json';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExtensionsService } from './extensions-service.js';
import { MemoryContainerStore } from './testing-fixtures/memory-containers.js';

const NAME = 'acme.io/ownership';
const NS = 'default';
const ctx = rpcContext({ namespace: NS });
const ownership = {
  type: 'object',
  required: ['team'],
  properties: { team: { type: 'string' }, replicas: { type: 'integer', minimum: 1 }, owner: { type: 'object' } },
};

let dir: string;
let registry: JsonSchemaRegistry;
let store: MemoryContainerStore;
let exchange: LocalEventExchange;
let service: ExtensionsService;

/** Calls a method as the transport would: the request through its codec (all fields present), the response too. */
async function call(svc: string, method: string, request: Record<string, unknown>, context = ctx): Promise<any> {
  const m = serviceMethod(svc, method)!;
  const handler = service.services.find((s) => s.service === svc)!.handlers[method]!;
  const req = messageCodec(m.requestType);
  const res = messageCodec(m.responseType);
  const out = await handler(req.decode(req.encode(request)), context);
  return res.decode(res.encode(out ?? {}));
}
const ext = (method: string, request: Record<string, unknown>, context = ctx) => call(ServiceNames.Extensions, method, request, context);
const schemas = (method: string, request: Record<string, unknown>) => call(ServiceNames.ExtensionSchemas, method, request);
const jsonValue = (v: unknown) => ({ type_url: NAME, value: Buffer.from(JSON.stringify(v)) });
const decodeValue = (e: { value: { value: Buffer } }) => JSON.parse(e.value.value.toString());

async function collect(signal: AbortSignal, filters: string[] = []): Promise<Envelope[]> {
  const seen: Envelope[] = [];
  void (async () => {
    for await (const e of exchange.subscribe(filters, signal)) seen.push(e);
  })();
  await new Promise((r) => setImmediate(r));
  return seen;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ext-svc-'));
  registry = await JsonSchemaRegistry.open({ root: dir });
  store = new MemoryContainerStore(new JsonExtensionPolicy(registry));
  exchange = new LocalEventExchange();
  service = new ExtensionsService(store, registry, exchange, exchange);
  await store.create({ namespace: NS }, { id: 'c1' });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Schemas', () => {
  it('registers, gets, lists and deletes schemas over the wire shapes', async () => {
    const { schema } = await schemas('Register', { name: NAME, schema: JSON.stringify(ownership), indexed_paths: ['team'] });
    expect(schema).toMatchObject({ name: NAME, version: 1, indexed_paths: ['team'], source: 'api' });
    expect(JSON.parse(schema.schema)).toEqual(ownership);
    expect((await schemas('Get', { name: NAME })).schema.version).toBe(1);
    expect((await schemas('List', {})).schemas.map((s: { name: string }) => s.name)).toEqual([NAME]);
    await schemas('Delete', { name: NAME });
    await expectFailure(schemas('Get', { name: NAME }), 'not-found', `schema "${NAME}": not found`);
  });

  it('refuses a schema that is not JSON, not an object, or has no name', async () => {
    await expectFailure(schemas('Register', { name: NAME, schema: '{' }), 'invalid-argument', `schema "${NAME}" is not JSON`);
    await expectFailure(schemas('Register', { name: NAME, schema: '[]' }), 'invalid-argument', 'a schema must be a JSON object');
    await expectFailure(schemas('Register', { name: '', schema: '{}' }), 'invalid-argument', 'name is required');
  });

  it('checks a replacement against the values stored in every namespace, naming the containers', async () => {
    await schemas('Register', { name: NAME, schema: JSON.stringify(ownership) });
    await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'payments' }) });
    await store.create({ namespace: 'other' }, { id: 'c9' });
    await ext('Set', { container_id: 'c9', name: NAME, value: jsonValue({ team: 'search' }) }, rpcContext({ namespace: 'other' }));
    const narrower = JSON.stringify({ ...ownership, properties: { ...ownership.properties, team: { const: 'payments' } } });
    await expectFailure(schemas('Register', { name: NAME, schema: narrower }), 'failed-precondition', 'would refuse 1 of 2 stored values: other/c9 (/team: must be equal to constant)');
    expect((await schemas('Register', { name: NAME, schema: narrower, force: true })).schema.version).toBe(2);
  });
});

describe('Extensions', () => {
  beforeEach(async () => {
    await schemas('Register', { name: NAME, schema: JSON.stringify(ownership), indexed_paths: ['team'] });
  });

  it('sets, gets, patches and deletes one extension with revisions, publishing each change', async () => {
    const ac = new AbortController();
    const seen = await collect(ac.signal, ['topic=="/containers/extensions/update"']);
    const set = await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'payments', owner: { email: 'a@x' } }) });
    expect(set.extension).toMatchObject({ container_id: 'c1', name: NAME, revision: 1 });
    const patched = await ext('Patch', { container_id: 'c1', name: NAME, patch: '{"owner":{"email":null,"slack":"#pay"},"replicas":2}', expected_revision: { value: 1 } });
    expect(patched.extension.revision).toBe(2);
    expect(decodeValue(patched.extension)).toEqual({ team: 'payments', owner: { slack: '#pay' }, replicas: 2 });
    expect(patched.extension.value.type_url).toBe(NAME);
    const got = await ext('Get', { container_id: 'c1', name: NAME });
    expect(got.extension.revision).toBe(2);
    expect(decodeValue(got.extension)).toEqual({ team: 'payments', owner: { slack: '#pay' }, replicas: 2 });
    expect(await ext('Delete', { container_id: 'c1', name: NAME, expected_revision: { value: 2 } })).toEqual({ revision: 2 });
    await expectFailure(ext('Get', { container_id: 'c1', name: NAME }), 'not-found');
    // Set again after the delete (absent: expected revision 0): the count goes on.
    expect((await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'x' }), expected_revision: { value: 0 } })).extension.revision).toBe(3);
    await new Promise((r) => setImmediate(r));
    ac.abort();
    const codec = messageCodec('berth.services.extensions.v1.ContainerExtensionUpdate');
    expect(seen.map((e) => [e.namespace, e.topic, e.event.typeUrl])).toEqual(Array(4).fill([NS, '/containers/extensions/update', 'berth.services.extensions.v1.ContainerExtensionUpdate']));
    expect(seen.map((e) => codec.decode(e.event.value))).toEqual([
      { container_id: 'c1', name: NAME, revision: 1, deleted: false },
      { container_id: 'c1', name: NAME, revision: 2, deleted: false },
      { container_id: 'c1', name: NAME, revision: 2, deleted: true },
      { container_id: 'c1', name: NAME, revision: 3, deleted: false },
    ]);
  });

  it('refuses a stale expected revision with FailedPrecondition, and 0 means "must be absent"', async () => {
    await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'a' }), expected_revision: { value: 0 } });
    await expectFailure(ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'b' }), expected_revision: { value: 0 } }), 'failed-precondition', 'the current revision is 1');
    await expectFailure(ext('Patch', { container_id: 'c1', name: NAME, patch: '{"team":"b"}', expected_revision: { value: 7 } }), 'failed-precondition', 'the current revision is 1');
    await expectFailure(ext('Delete', { container_id: 'c1', name: NAME, expected_revision: { value: 3 } }), 'failed-precondition');
    expect(decodeValue((await ext('Get', { container_id: 'c1', name: NAME })).extension)).toEqual({ team: 'a' });
    // Without an expected revision, writes are unconditional.
    expect((await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'c' }) })).extension.revision).toBe(2);
  });

  it('validates the merged document: a patch that breaks the schema is InvalidArgument naming the pointer, and nothing changes', async () => {
    await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'a' }) });
    await expectFailure(ext('Patch', { container_id: 'c1', name: NAME, patch: '{"team":null,"replicas":0}' }), 'invalid-argument', '/team: required property is missing; /replicas: must be >= 1');
    await expectFailure(ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 5 }) }), 'invalid-argument', '/team: must be string');
    const got = await ext('Get', { container_id: 'c1', name: NAME });
    expect([got.extension.revision, decodeValue(got.extension)]).toEqual([1, { team: 'a' }]);
  });

  it('patches an absent extension from {}, and refuses patches that are not JSON or values that are not stored JSON', async () => {
    expect(decodeValue((await ext('Patch', { container_id: 'c1', name: NAME, patch: '{"team":"new","gone":null}' })).extension)).toEqual({ team: 'new' });
    await expectFailure(ext('Patch', { container_id: 'c1', name: NAME, patch: '{team' }), 'invalid-argument', 'patch is not JSON');
    await expectFailure(ext('Patch', { container_id: 'c1', name: NAME, patch: '' }), 'invalid-argument', 'patch is required');
    await ext('Set', { container_id: 'c1', name: 'proto.io/raw', value: { type_url: 'proto.io/raw', value: Buffer.from([0x0a, 0x01, 0xff]) } });
    await expectFailure(ext('Patch', { container_id: 'c1', name: 'proto.io/raw', patch: '{}' }), 'invalid-argument', 'the stored value is not JSON');
  });

  it('needs a namespace, a container id, a name and a value', async () => {
    await expectFailure(ext('Get', { container_id: 'c1', name: NAME }, rpcContext()), 'failed-precondition', 'namespace is required');
    await expectFailure(ext('Get', { container_id: '', name: NAME }), 'invalid-argument', 'container_id is required');
    await expectFailure(ext('Set', { container_id: 'c1', name: '' }), 'invalid-argument', 'name is required');
    await expectFailure(ext('Set', { container_id: 'c1', name: NAME }), 'invalid-argument', 'value is required');
    await expectFailure(ext('Delete', { container_id: 'c1', name: NAME }), 'not-found');
    await expectFailure(ext('Get', { container_id: 'nope', name: NAME }), 'not-found', 'container "nope"');
  });

  it('two concurrent patches with the same revision: one wins, the other is FailedPrecondition, nothing is lost', async () => {
    await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'a' }) });
    const outcomes = await Promise.allSettled([
      ext('Patch', { container_id: 'c1', name: NAME, patch: '{"replicas":2}', expected_revision: { value: 1 } }),
      ext('Patch', { container_id: 'c1', name: NAME, patch: '{"owner":{"n":1}}', expected_revision: { value: 1 } }),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const loser = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason.message).toContain('the current revision is 2');
    // The loser retries on the current revision; both changes are then in the document.
    const retry = outcomes[0]!.status === 'rejected' ? '{"replicas":2}' : '{"owner":{"n":1}}';
    await ext('Patch', { container_id: 'c1', name: NAME, patch: retry, expected_revision: { value: 2 } });
    expect(decodeValue((await ext('Get', { container_id: 'c1', name: NAME })).extension)).toEqual({ team: 'a', replicas: 2, owner: { n: 1 } });
  });

  it('queries through the store with the ext. shorthand', async () => {
    await store.create({ namespace: NS }, { id: 'c2' });
    await store.create({ namespace: NS }, { id: 'c3' });
    await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'payments' }) });
    await ext('Set', { container_id: 'c2', name: NAME, value: jsonValue({ team: 'search' }) });
    await ext('Set', { container_id: 'c3', name: NAME, value: jsonValue({ team: 'payments' }) });
    const ids = async (where: string[]) => (await ext('Query', { where })).containers.map((c: { id: string }) => c.id).sort();
    expect(await ids([`ext."${NAME}".team==payments`])).toEqual(['c1', 'c3']);
    expect(await ids([`extensions."${NAME}".team=="search"`])).toEqual(['c2']);
    expect(await ids([`ext."${NAME}".team==payments,id!=c1`])).toEqual(['c3']);
    expect(await ids([`ext."${NAME}".team==search`, 'id==c1'])).toEqual(['c1', 'c2']);
    const [one] = (await ext('Query', { where: ['id==c2'] })).containers;
    expect(decodeValue({ value: one.extensions[NAME] })).toEqual({ team: 'search' });
    await expectFailure(ext('Query', { where: ['ext.,'] }), 'invalid-argument', 'where: parse error');
  });
});

describe('Extensions.Watch', () => {
  it('streams the committed changes of its namespace, filtered by container and name, until cancelled', async () => {
    await schemas('Register', { name: NAME, schema: JSON.stringify(ownership) });
    await store.create({ namespace: NS }, { id: 'c2' });
    await store.create({ namespace: 'other' }, { id: 'c1' });
    const ac = new AbortController();
    const handler = service.services.find((s) => s.service === ServiceNames.Extensions)!.handlers.Watch!;
    const stream = handler({ container_ids: ['c1'], names: [] }, rpcContext({ namespace: NS, signal: ac.signal })) as AsyncIterable<berth.services.extensions.v1.ContainerExtensionUpdate>;
    const got: berth.services.extensions.v1.ContainerExtensionUpdate[] = [];
    const done = (async () => {
      for await (const u of stream) {
        got.push(u);
        if (got.length === 2) ac.abort();
      }
    })();
    await new Promise((r) => setImmediate(r));
    await ext('Set', { container_id: 'c2', name: NAME, value: jsonValue({ team: 'x' }) }); // another container
    await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'x' }) }, rpcContext({ namespace: 'other' })); // another namespace
    await ext('Set', { container_id: 'c1', name: NAME, value: jsonValue({ team: 'a' }) });
    await ext('Delete', { container_id: 'c1', name: NAME });
    await done.catch(() => undefined);
    expect(got).toEqual([
      { container_id: 'c1', name: NAME, revision: 1, deleted: false },
      { container_id: 'c1', name: NAME, revision: 1, deleted: true },
    ]);
    expect(exchange.subscriberCount).toBe(0);
  });

  it('is NotImplemented without an event subscriber', async () => {
    const bare = new ExtensionsService(store, registry, exchange);
    const handler = bare.services.find((s) => s.service === ServiceNames.Extensions)!.handlers.Watch!;
    const stream = handler({ container_ids: [], names: [] }, ctx) as AsyncIterable<unknown>;
    await expectFailure((async () => { for await (const _ of stream) break; })(), 'not-implemented');
  });
});
