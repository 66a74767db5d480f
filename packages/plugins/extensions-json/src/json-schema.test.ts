import { expectFailure } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { compileJsonSchema, describeSchemaErrors, listCapped, parseJsonValue } from './json-schema.js';

const errorsOf = (schema: object, doc: unknown): string[] => {
  const validate = compileJsonSchema('t', schema);
  expect(validate(doc)).toBe(false);
  return describeSchemaErrors(validate.errors);
};

describe('compileJsonSchema (draft 2020-12)', () => {
  it('reports every error with its JSON pointer, missing and extra properties at their own pointer', () => {
    const schema = {
      type: 'object',
      required: ['team', 'owner'],
      additionalProperties: false,
      properties: {
        team: { type: 'string' },
        owner: { type: 'object', properties: { 'e/mail~': { type: 'string', format: 'email' } } },
        replicas: { type: 'integer', minimum: 1 },
        ports: { type: 'array', items: { type: 'integer' } },
      },
    };
    expect(errorsOf(schema, { replicas: 0, ports: [80, 'x'], owner: { 'e/mail~': 'nope' }, extra: 1 })).toEqual([
      '/team: required property is missing',
      '/extra: property is not allowed',
      '/owner/e~1mail~0: must match format "email"',
      '/replicas: must be >= 1',
      '/ports/1: must be integer',
    ]);
    expect(errorsOf(schema, 'text')).toEqual(['(root): must be object']);
  });

  it('knows 2020-12 keywords: prefixItems, $defs/$ref, unevaluatedProperties, dependentRequired', () => {
    const schema = {
      $defs: { name: { type: 'string', minLength: 2 } },
      type: 'object',
      properties: { pair: { prefixItems: [{ $ref: '#/$defs/name' }, { type: 'integer' }] } },
      dependentRequired: { pair: ['kind'] },
      unevaluatedProperties: false,
    };
    expect(errorsOf(schema, { pair: ['a', 'b'], stray: 1 })).toEqual([
      '/pair/0: must NOT have fewer than 2 characters',
      '/pair/1: must be integer',
      '(root): must have property kind when property pair is present',
      '/stray: property is not allowed',
    ]);
  });

  it('refuses schemas that are not objects, that use unknown keywords or that are malformed', async () => {
    await expectFailure(Promise.resolve().then(() => compileJsonSchema('n', [])), 'invalid-argument', 'schema "n": a schema must be a JSON object');
    await expectFailure(Promise.resolve().then(() => compileJsonSchema('n', { type: 'object', propertys: {} })), 'invalid-argument', 'schema "n" does not compile: strict mode: unknown keyword: "propertys"');
    await expectFailure(Promise.resolve().then(() => compileJsonSchema('n', { type: 'strin' })), 'invalid-argument', 'schema "n" does not compile: schema is invalid');
    await expectFailure(Promise.resolve().then(() => compileJsonSchema('n', { $ref: 'https://elsewhere.example/s.json' })), 'invalid-argument', 'does not compile');
  });

  it('compiles two versions carrying the same $id', () => {
    const a = compileJsonSchema('n', { $id: 'https://acme.io/s', type: 'string' });
    const b = compileJsonSchema('n', { $id: 'https://acme.io/s', type: 'integer' });
    expect([a('x'), b('x'), b(1)]).toEqual([true, false, true]);
  });
});

describe('parseJsonValue', () => {
  it('parses UTF-8 JSON text and refuses other bytes, naming what it parsed', async () => {
    expect(parseJsonValue('v', Buffer.from('{"a":[1]}'))).toEqual({ a: [1] });
    await expectFailure(Promise.resolve().then(() => parseJsonValue('extension "x"', Buffer.from('{"a":'))), 'invalid-argument', 'extension "x": value is not JSON: ');
    await expectFailure(Promise.resolve().then(() => parseJsonValue('v', { typeUrl: 't', value: Buffer.from([0x22, 0xff, 0x22]) })), 'invalid-argument', 'v: value is not JSON: not valid UTF-8');
  });
});

describe('listCapped', () => {
  it('lists at most max items and counts the rest', () => {
    expect(listCapped(['a', 'b', 'c'], 2)).toBe('a; b; (and 1 more)');
    expect(listCapped(['a', 'b'], 2)).toBe('a; b');
  });
});
