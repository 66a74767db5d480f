import { expectFailure } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { jsonBytes } from './containers-ops.js';
import { extensionJson, formatExtensionValue, formatUpdate, parseIndexedPath, parseRevision, parseSchemaDocument, schemaJson, schemaRows, updateJson } from './extensions-ops.js';

const schema = {
  name: 'acme.io/ownership',
  schema: { type: 'object' },
  version: 3,
  indexedPaths: ['team', 'owner.email'],
  source: 'api' as const,
  createdAt: new Date('2026-12-01T10:00:00Z'),
  updatedAt: new Date('2026-12-01T11:00:00.5Z'),
};

describe('berth extensions arguments', () => {
  it('--revision takes a non-negative integer, 0 meaning absent', () => {
    expect(parseRevision('0')).toBe(0);
    expect(parseRevision('17')).toBe(17);
    for (const bad of ['', '-1', '1.5', 'x', '1e3', '99999999999999999999']) {
      expect(() => parseRevision(bad), bad).toThrow(/^--revision .*: expected a non-negative integer/);
    }
  });

  it('--index takes a dot-separated path', () => {
    expect(parseIndexedPath('owner.email')).toBe('owner.email');
    for (const bad of ['', '.a', 'a.', 'a..b']) expect(() => parseIndexedPath(bad), bad).toThrow(/dot-separated JSON path/);
  });

  it('a schema file must hold a JSON object', async () => {
    expect(parseSchemaDocument('{"type":"object"}', 's.json')).toEqual({ type: 'object' });
    await expectFailure(Promise.resolve().then(() => parseSchemaDocument('{', 's.json')), 'invalid-argument', /^schema s.json: not JSON/);
    await expectFailure(Promise.resolve().then(() => parseSchemaDocument('[1]', 's.json')), 'invalid-argument', /must be an object/);
    await expectFailure(Promise.resolve().then(() => parseSchemaDocument('true', 's.json')), 'invalid-argument', /must be an object/);
  });
});

describe('berth extensions output', () => {
  it('schemas as rows and JSON', () => {
    expect(schemaRows([schema])).toEqual([
      ['NAME', 'VERSION', 'SOURCE', 'INDEXED', 'UPDATED'],
      ['acme.io/ownership', '3', 'api', 'team,owner.email', '2026-12-01T11:00:00.5Z'],
    ]);
    expect(schemaRows([{ ...schema, indexedPaths: [] }])[1]![3]).toBe('-');
    expect(schemaJson(schema)).toEqual({
      name: 'acme.io/ownership',
      version: 3,
      source: 'api',
      indexedPaths: ['team', 'owner.email'],
      createdAt: '2026-12-01T10:00:00.000Z',
      updatedAt: '2026-12-01T11:00:00.500Z',
      schema: { type: 'object' },
    });
    expect('schema' in schemaJson(schema, { document: false })).toBe(false);
  });

  it('an extension value: JSON decoded, other bytes base64', () => {
    const e = { containerId: 'c1', name: 'acme.io/o', value: { typeUrl: 'acme.io/o', value: jsonBytes({ team: 'p', n: [1] }) }, revision: 4 };
    expect(formatExtensionValue(e)).toBe('{\n  "team": "p",\n  "n": [\n    1\n  ]\n}\n');
    expect(extensionJson(e)).toEqual({ container: 'c1', name: 'acme.io/o', typeUrl: 'acme.io/o', revision: 4, json: { team: 'p', n: [1] } });
    const bin = { ...e, value: { typeUrl: 'x.Proto', value: new Uint8Array([0x0a, 0x01, 0xff]) } };
    expect(formatExtensionValue(bin)).toBe('CgH/\n');
    expect(extensionJson(bin)).toMatchObject({ typeUrl: 'x.Proto', base64: 'CgH/' });
  });

  it('watch lines', () => {
    expect(formatUpdate({ containerId: 'c1', name: 'acme.io/o', revision: 2, deleted: false })).toBe('c1 acme.io/o 2');
    expect(formatUpdate({ containerId: 'c1', name: 'acme.io/o', revision: 2, deleted: true })).toBe('c1 acme.io/o 2 deleted');
    expect(updateJson({ containerId: 'c1', name: 'n', revision: 1, deleted: false })).toEqual({ container: 'c1', name: 'n', revision: 1, deleted: false });
  });
});
