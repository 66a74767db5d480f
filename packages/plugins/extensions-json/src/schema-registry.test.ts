import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyValue } from '@berth/core';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonExtensionPolicy } from './policy.js';
import { JsonSchemaRegistry, MAX_REFUSED_LISTED, STATE_FILE, type ExistingValue } from './schema-registry.js';

const NAME = 'acme.io/ownership';
const json = (v: unknown): AnyValue => ({ typeUrl: NAME, value: Buffer.from(JSON.stringify(v)) });
const teamString = { type: 'object', properties: { team: { type: 'string' } }, required: ['team'] };
const teamEnum = { type: 'object', properties: { team: { enum: ['payments', 'search'] } }, required: ['team'] };

async function* values(items: readonly ExistingValue[], onEach?: (i: number) => Promise<void> | void): AsyncIterable<ExistingValue> {
  for (let i = 0; i < items.length; i++) {
    await onEach?.(i);
    yield items[i]!;
  }
}

let dir: string;
let root: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ext-json-'));
  root = join(dir, 'root');
  await (await import('node:fs/promises')).mkdir(root);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('JsonSchemaRegistry', () => {
  it('registers, gets, lists and deletes schemas; versions go up per name and are never reused', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    const v1 = await r.register({ name: NAME, schema: teamString, indexedPaths: ['team'] });
    expect(v1).toMatchObject({ name: NAME, version: 1, indexedPaths: ['team'], source: 'api', schema: teamString });
    expect(await r.register({ name: 'b.io/x', schema: { type: 'string' } })).toMatchObject({ version: 1, indexedPaths: [] });
    const v2 = await r.register({ name: NAME, schema: teamEnum, indexedPaths: ['team'] });
    expect(v2.version).toBe(2);
    expect(v2.createdAt).toEqual(v1.createdAt);
    expect(r.get(NAME)).toBe(v2);
    expect(r.list().map((s) => `${s.name}@${s.version}`)).toEqual(['acme.io/ownership@2', 'b.io/x@1']);
    await r.delete(NAME);
    await expectFailure(Promise.resolve().then(() => r.get(NAME)), 'not-found', `schema "${NAME}": not found`);
    await expectFailure(r.delete(NAME), 'not-found');
    expect((await r.register({ name: NAME, schema: teamString })).version).toBe(3);
  });

  it('gives the same schema registered again no new version (object key order does not count)', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    await r.register({ name: NAME, schema: { type: 'object', required: ['team'] }, indexedPaths: ['b', 'a'] });
    const again = await r.register({ name: NAME, schema: { required: ['team'], type: 'object' }, indexedPaths: ['a', 'b'] });
    expect(again.version).toBe(1);
    expect((await r.register({ name: NAME, schema: { required: ['team'], type: 'object' }, indexedPaths: ['a'] })).version).toBe(2);
  });

  it('keeps API schemas and version counters across a restart', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    await r.register({ name: NAME, schema: teamString, indexedPaths: ['team'] });
    await r.register({ name: NAME, schema: teamEnum, indexedPaths: ['team'] });
    await r.register({ name: 'gone.io/x', schema: { type: 'string' } });
    await r.delete('gone.io/x');
    await r.close();
    const again = await JsonSchemaRegistry.open({ root });
    expect(again.list().map((s) => [s.name, s.version, s.source, s.indexedPaths])).toEqual([[NAME, 2, 'api', ['team']]]);
    expect(again.current(NAME)!.validate({ team: 'search' })).toBe(true);
    expect(again.current(NAME)!.validate({ team: 'other' })).toBe(false);
    expect((await again.register({ name: 'gone.io/x', schema: { type: 'string' } })).version).toBe(2);
    expect(await readdir(root)).toEqual([STATE_FILE]);
  });

  it('refuses bad input and changes nothing: bad names, schemas that do not compile, bad indexed paths', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    await expectFailure(r.register({ name: '', schema: {} }), 'invalid-argument', 'extension name must not be empty');
    await expectFailure(r.register({ name: 'a\u0000b', schema: {} }), 'invalid-argument', 'control character');
    await expectFailure(r.register({ name: NAME, schema: { type: 'nope' } }), 'invalid-argument', `schema "${NAME}" does not compile`);
    await expectFailure(r.register({ name: NAME, schema: {}, indexedPaths: ['a.'] }), 'invalid-argument', 'empty segment');
    expect(r.list()).toEqual([]);
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses an incompatible replacement, naming the stored values it would refuse (capped), unless forced', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    await r.register({ name: NAME, schema: teamString });
    const stored: ExistingValue[] = [
      { namespace: 'default', id: 'ok', value: json({ team: 'payments' }) },
      ...Array.from({ length: MAX_REFUSED_LISTED + 2 }, (_, i) => ({ namespace: 'ns2', id: `c${i}`, value: json({ team: `t${i}` }) })),
      { namespace: 'default', id: 'raw', value: { typeUrl: 'x', value: Buffer.from([0xff]) } },
    ];
    const err = await expectFailure(r.register({ name: NAME, schema: teamEnum }, { existing: values(stored) }), 'failed-precondition');
    expect(err.message).toContain(`schema "${NAME}" version 2 would refuse ${MAX_REFUSED_LISTED + 3} of ${stored.length} stored values: ns2/c0 (/team: must be equal to one of the allowed values); ns2/c1 (`);
    expect(err.message).toContain(`(and 3 more); register it with force to replace the schema anyway`);
    expect(r.get(NAME).version).toBe(1);
    // A compatible replacement passes; bare values are named by position.
    await expectFailure(r.register({ name: NAME, schema: teamEnum }, { existing: (async function* () { yield json({ team: 'x' }); })() }), 'failed-precondition', 'value 1 (/team');
    expect((await r.register({ name: NAME, schema: teamEnum }, { existing: values(stored.slice(0, 1)) })).version).toBe(2);
    // Forced, the check is skipped and the version still counts up.
    expect((await r.register({ name: NAME, schema: { type: 'object', required: ['owner'] } }, { force: true, existing: values(stored) })).version).toBe(3);
  });

  it('checks a first registration against what is already stored under the name too', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    await expectFailure(r.register({ name: NAME, schema: teamString }, { existing: values([{ namespace: 'default', id: 'c1', value: json({ team: 7 }) }]) }), 'failed-precondition', 'default/c1 (/team: must be string)');
    expect(r.list()).toEqual([]);
  });

  it('makes writes satisfy the old and the new version while a replacement is being checked', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    const policy = new JsonExtensionPolicy(r);
    await r.register({ name: NAME, schema: teamString });
    const outcomes: string[] = [];
    const stored = [{ namespace: 'default', id: 'c1', value: json({ team: 'payments' }) }];
    await r.register({ name: NAME, schema: teamEnum }, {
      existing: values(stored, () => {
        // A write arriving during the scan: valid under version 1 only, then valid under both.
        for (const team of ['marketing', 'search']) {
          try {
            policy.validate('default', 'c2', NAME, json({ team }));
            outcomes.push(`${team}: ok`);
          } catch (err) {
            outcomes.push(`${team}: ${(err as Error).message}`);
          }
        }
      }),
    });
    expect(outcomes).toEqual([
      `marketing: extension "${NAME}" of container "c2" does not match schema version 2: /team: must be equal to one of the allowed values`,
      'search: ok',
    ]);
    expect(r.candidate(NAME)).toBeUndefined();
  });

  it('runs registrations one at a time', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => r.register({ name: NAME, schema: { type: 'object', maxProperties: i + 1 } })));
    expect(results.map((s) => s.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.get(NAME).version).toBe(8);
  });

  it('tells listeners when a name’s indexed paths change, and only then', async () => {
    const r = await JsonSchemaRegistry.open({ root });
    const seen: string[] = [];
    const off = r.onIndexChange((n) => seen.push(n));
    await r.register({ name: NAME, schema: teamString }); // [] -> []
    await r.register({ name: NAME, schema: teamString, indexedPaths: ['team'] }); // -> [team]
    await r.register({ name: NAME, schema: teamEnum, indexedPaths: ['team'] }); // same paths
    await r.register({ name: 'b.io/x', schema: {}, indexedPaths: ['a'] });
    await r.delete(NAME);
    off();
    await r.delete('b.io/x');
    expect(seen).toEqual([NAME, 'b.io/x', NAME]);
  });

  it('refuses to start on a registry file that is not one, and removes the debris of an interrupted write', async () => {
    await writeFile(join(root, STATE_FILE), '{"format": 1, "api": ');
    await expectFailure(JsonSchemaRegistry.open({ root }), 'data-loss', `${join(root, STATE_FILE)}: the schema registry is not JSON`);
    await writeFile(join(root, STATE_FILE), '{"format": 9}');
    await expectFailure(JsonSchemaRegistry.open({ root }), 'data-loss', 'not a schema registry of format 1');
    await rm(join(root, STATE_FILE));
    await writeFile(join(root, `${STATE_FILE}.123-abcd.tmp`), 'half');
    const r = await JsonSchemaRegistry.open({ root });
    expect(await readdir(root)).toEqual([]);
    await r.register({ name: NAME, schema: teamString });
    expect(JSON.parse(await readFile(join(root, STATE_FILE), 'utf8')).api[NAME].version).toBe(1);
  });
});

describe('JsonSchemaRegistry: schema files from the config', () => {
  const file = (name: string) => join(dir, name);

  it('loads one definition or an array of them; they are source config and cannot be changed through the API', async () => {
    await writeFile(file('one.json'), JSON.stringify({ name: NAME, schema: teamString, indexed_paths: ['team'] }));
    await writeFile(file('many.json'), JSON.stringify([{ name: 'a.io/x', schema: { type: 'integer' } }, { name: 'b.io/y', schema: { type: 'string' } }]));
    const r = await JsonSchemaRegistry.open({ root, files: [file('one.json'), file('many.json')] });
    expect(r.list().map((s) => [s.name, s.version, s.source, s.indexedPaths])).toEqual([
      ['a.io/x', 1, 'config', []],
      [NAME, 1, 'config', ['team']],
      ['b.io/y', 1, 'config', []],
    ]);
    await expectFailure(r.register({ name: NAME, schema: teamEnum }), 'failed-precondition', `schema "${NAME}" is defined by the config file ${file('one.json')}; change it there`);
    await expectFailure(r.delete('a.io/x'), 'failed-precondition', 'remove it there');
  });

  it('gives a changed file’s schema the next version at the next start, and keeps it when unchanged', async () => {
    await writeFile(file('s.json'), JSON.stringify({ name: NAME, schema: teamString }));
    const first = await JsonSchemaRegistry.open({ root, files: [file('s.json')] });
    const created = first.get(NAME).createdAt;
    expect(first.get(NAME).version).toBe(1);
    expect((await JsonSchemaRegistry.open({ root, files: [file('s.json')] })).get(NAME).version).toBe(1);
    await writeFile(file('s.json'), JSON.stringify({ name: NAME, schema: teamEnum }));
    const changed = await JsonSchemaRegistry.open({ root, files: [file('s.json')] });
    expect(changed.get(NAME)).toMatchObject({ version: 2, createdAt: created });
    // Dropped from the config, then registered through the API: the count goes on.
    const dropped = await JsonSchemaRegistry.open({ root, files: [] });
    expect(dropped.list()).toEqual([]);
    expect((await dropped.register({ name: NAME, schema: teamString })).version).toBe(3);
    // A file taking over an API-registered name wins and counts on.
    expect((await JsonSchemaRegistry.open({ root, files: [file('s.json')] })).get(NAME)).toMatchObject({ version: 4, source: 'config' });
  });

  it('names the file and the problem for unreadable, non-JSON, malformed or conflicting files', async () => {
    const cases: [string, string, string][] = [
      ['missing.json', '', 'cannot read it'],
      ['bad.json', '{', 'not JSON'],
      ['key.json', JSON.stringify({ name: NAME, schema: {}, indexedPaths: [] }), 'unknown key "indexedPaths" (expected name, schema, indexed_paths)'],
      ['noname.json', JSON.stringify([{ name: NAME, schema: {} }, { schema: {} }]), '[1]: extension name must not be empty'],
      ['schema.json', JSON.stringify({ name: NAME, schema: { type: 'nope' } }), `schema "${NAME}" does not compile`],
      ['paths.json', JSON.stringify({ name: NAME, schema: {}, indexed_paths: 'team' }), '"indexed_paths" must be an array of strings'],
      ['dup.json', JSON.stringify([{ name: NAME, schema: {} }, { name: NAME, schema: {} }]), `schema "${NAME}" is also defined in`],
    ];
    for (const [name, text, message] of cases) {
      if (text) await writeFile(file(name), text);
      await expectFailure(JsonSchemaRegistry.open({ root, files: [file(name)] }), 'invalid-argument', `schema file ${file(name)}`);
      await expectFailure(JsonSchemaRegistry.open({ root, files: [file(name)] }), 'invalid-argument', message);
    }
    await expectFailure(JsonSchemaRegistry.open({ root, files: ['relative.json'] }), 'invalid-argument', 'schema file relative.json: the path must be absolute');
  });
});
