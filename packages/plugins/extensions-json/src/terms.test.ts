import { expectFailure } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { checkIndexedPaths, MAX_INDEXED_PATHS, termsOf, valuesAt } from './terms.js';

describe('valuesAt', () => {
  const doc = {
    team: 'payments',
    replicas: 3,
    ratio: 0.5,
    critical: false,
    none: null,
    owner: { email: 'a@example.com', tags: ['x', 2, true, null, { nested: 1 }, ['deep']] },
    owners: [{ team: 'a' }, { team: 'b' }, { team: 'a' }, { other: 1 }, 'scalar'],
  };

  it('gives strings as themselves and numbers and booleans as their JSON text', () => {
    expect(valuesAt(doc, 'team')).toEqual(['payments']);
    expect(valuesAt(doc, 'replicas')).toEqual(['3']);
    expect(valuesAt(doc, 'ratio')).toEqual(['0.5']);
    expect(valuesAt(doc, 'critical')).toEqual(['false']);
  });

  it('gives each scalar element of an array, and walks arrays met on the way, without duplicates', () => {
    expect(valuesAt(doc, 'owner.tags')).toEqual(['x', '2', 'true']);
    expect(valuesAt(doc, 'owners.team')).toEqual(['a', 'b']);
  });

  it('gives nothing for objects, nulls, absent keys and paths through scalars', () => {
    expect(valuesAt(doc, 'owner')).toEqual([]);
    expect(valuesAt(doc, 'none')).toEqual([]);
    expect(valuesAt(doc, 'missing')).toEqual([]);
    expect(valuesAt(doc, 'team.length')).toEqual([]);
    expect(valuesAt('payments', 'team')).toEqual([]);
    expect(valuesAt({ constructor: 'x' }, 'toString')).toEqual([]);
  });

  it('termsOf lists path and value for each declared path', () => {
    expect(termsOf(doc, ['owners.team', 'replicas'])).toEqual([
      { path: 'owners.team', value: 'a' },
      { path: 'owners.team', value: 'b' },
      { path: 'replicas', value: '3' },
    ]);
  });
});

describe('checkIndexedPaths', () => {
  it('sorts the paths', () => {
    expect(checkIndexedPaths('n', ['team', 'owner.email'])).toEqual(['owner.email', 'team']);
  });

  it('refuses empty paths and segments, duplicates, control characters and too many paths, naming each', async () => {
    const err = await expectFailure(Promise.resolve().then(() => checkIndexedPaths('acme.io/x', ['', 'a..b', 'team', 'team', 'x\ny'])), 'invalid-argument');
    expect(err.message).toBe(
      'schema "acme.io/x": an indexed path is empty; indexed path "a..b" has an empty segment; indexed path "team" is listed twice; indexed path "x\\ny" holds a control character',
    );
    const many = Array.from({ length: MAX_INDEXED_PATHS + 1 }, (_, i) => `p${i}`);
    await expectFailure(Promise.resolve().then(() => checkIndexedPaths('n', many)), 'invalid-argument', `${MAX_INDEXED_PATHS + 1} indexed paths (at most ${MAX_INDEXED_PATHS})`);
  });
});
