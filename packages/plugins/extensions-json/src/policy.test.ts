import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyValue } from '@berth/core';
import { expectFailure } from '@berth/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonExtensionPolicy } from './policy.js';
import { JsonSchemaRegistry } from './schema-registry.js';

const NAME = 'acme.io/ownership';
const any = (v: unknown, typeUrl = NAME): AnyValue => ({ typeUrl, value: Buffer.from(JSON.stringify(v)) });
const attempt = (fn: () => void) => Promise.resolve().then(fn);

let dir: string;
let registry: JsonSchemaRegistry;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ext-policy-'));
  registry = await JsonSchemaRegistry.open({ root: dir });
  await registry.register({
    name: NAME,
    schema: {
      type: 'object',
      required: ['team'],
      properties: { team: { type: 'string' }, replicas: { type: 'integer', minimum: 1 }, tags: { type: 'array', items: { type: 'string' } } },
    },
    indexedPaths: ['team', 'tags'],
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('JsonExtensionPolicy', () => {
  it('accepts a value its schema accepts and indexes the declared paths only', () => {
    const policy = new JsonExtensionPolicy(registry);
    const value = any({ team: 'payments', replicas: 2, tags: ['a', 'b'] });
    policy.validate('default', 'c1', NAME, value);
    expect(policy.terms(NAME, value)).toEqual([
      { path: 'tags', value: 'a' },
      { path: 'tags', value: 'b' },
      { path: 'team', value: 'payments' },
    ]);
    // Terms without a prior validate parse the value themselves.
    expect(policy.terms(NAME, any({ team: 'search' }))).toEqual([{ path: 'team', value: 'search' }]);
    expect(policy.indexedPaths(NAME)).toEqual(['tags', 'team']);
  });

  it('refuses a violating value with every error and its JSON pointer in one InvalidArgument', async () => {
    const policy = new JsonExtensionPolicy(registry);
    await expectFailure(
      attempt(() => policy.validate('default', 'c1', NAME, any({ replicas: 0, tags: ['ok', 3] }))),
      'invalid-argument',
      `extension "${NAME}" of container "c1" does not match schema version 1: /team: required property is missing; /replicas: must be >= 1; /tags/1: must be string`,
    );
  });

  it('refuses a value that is not JSON under a registered schema', async () => {
    const policy = new JsonExtensionPolicy(registry);
    await expectFailure(attempt(() => policy.validate('default', 'c1', NAME, { typeUrl: NAME, value: Buffer.from('{team:') })), 'invalid-argument', `extension "${NAME}" of container "c1": value is not JSON`);
  });

  it('stores names without a schema untouched, unless registration is required', async () => {
    const raw: AnyValue = { typeUrl: 'other.io/proto', value: Buffer.from([0x0a, 0x01, 0xff]) };
    const lenient = new JsonExtensionPolicy(registry);
    lenient.validate('default', 'c1', 'other.io/proto', raw);
    expect(lenient.terms('other.io/proto', raw)).toEqual([]);
    expect(lenient.indexedPaths('other.io/proto')).toEqual([]);
    const strict = new JsonExtensionPolicy(registry, { requireRegistered: true });
    await expectFailure(attempt(() => strict.validate('default', 'c1', 'other.io/proto', raw)), 'invalid-argument', 'no schema is registered for "other.io/proto" and this daemon requires one (require_registered)');
    strict.validate('default', 'c1', NAME, any({ team: 'x' }));
  });

  it('gives no terms for a stored value that is not JSON (stored before its schema)', () => {
    expect(new JsonExtensionPolicy(registry).terms(NAME, { typeUrl: NAME, value: Buffer.from([0xff]) })).toEqual([]);
  });
});
