import { describe, expect, it } from 'vitest';
import { isInvalidArgument, wireMessageOf } from '../errdefs/index.js';
import { validateIdentifier, validateLabel, validateLabels, validateTopic } from './validate.js';

const errorOf = (fn: () => void): Error => {
  try {
    fn();
  } catch (err) {
    expect(isInvalidArgument(err)).toBe(true);
    return err as Error;
  }
  throw new Error('expected an error');
};

describe('validateIdentifier', () => {
  it.each([
    'default',
    'Default',
    'k8s.io',
    'default-default',
    'swarmkit.docker.io',
    '0912341234',
    'task.0.0123456789',
    'container.system-75-f19a.00',
    'underscores_are_allowed',
    'a',
    'a'.repeat(76),
  ])('accepts %s', (id) => {
    expect(() => validateIdentifier(id)).not.toThrow();
  });

  it.each([
    '.foo..foo',
    'foo/foo',
    'foo/..',
    'foo..foo',
    'foo.-boo',
    '-foo.boo',
    'foo.boo-',
    'but__only_tasteful_underscores',
    'zn--e9.org',
    'default--default',
    'spa ce',
    'ünicode',
    'trailing\n',
  ])('rejects %j', (id) => {
    expect(errorOf(() => validateIdentifier(id)).message).toBe(
      `identifier ${JSON.stringify(id)} must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`,
    );
  });

  it('rejects empty and over-long identifiers with their own messages', () => {
    expect(wireMessageOf(errorOf(() => validateIdentifier('')))).toBe('identifier must not be empty: invalid argument');
    const long = 'a'.repeat(77);
    expect(errorOf(() => validateIdentifier(long)).message).toBe(
      `identifier "${long}" greater than maximum length (76 characters)`,
    );
  });

  it('counts the length in bytes', () => {
    expect(errorOf(() => validateIdentifier('é'.repeat(40))).message).toMatch(/greater than maximum length/);
  });
});

describe('validateLabels', () => {
  it('accepts up to 4096 bytes of key and value', () => {
    expect(() => validateLabel('k', 'v'.repeat(4095))).not.toThrow();
    expect(() => validateLabels({ a: 'b', 'containerd.io/gc.root': 'x'.repeat(4000) })).not.toThrow();
    expect(() => validateLabels(undefined)).not.toThrow();
  });

  it('rejects more, naming the first 10 characters of the key', () => {
    const err = errorOf(() => validateLabels({ ok: 'x', 'containerd.io/long': 'v'.repeat(4096) }));
    expect(err.message).toBe('label key and value greater than maximum size (4096 bytes), key: containerd');
    expect(errorOf(() => validateLabel('k', 'v'.repeat(4096))).message).toMatch(/key: k$/);
  });

  it('rejects an empty key, whatever the value', () => {
    for (const value of ['v', '']) {
      const err = errorOf(() => validateLabels({ ok: 'x', '': value }));
      expect(err.message).toBe('label key required');
      expect(isInvalidArgument(err)).toBe(true);
    }
    expect(() => validateLabel(' ', 'v')).not.toThrow();
  });

  it('counts bytes, not characters', () => {
    expect(() => validateLabel('k', 'é'.repeat(2048))).toThrow(/maximum size/);
    expect(() => validateLabel('k', 'é'.repeat(2047))).not.toThrow();
  });
});

describe('validateTopic', () => {
  it.each(['/tasks/exit', '/containers/create', '/snapshot/prepare', '/a', '/tasks/exec-added'])('accepts %s', (t) => {
    expect(() => validateTopic(t)).not.toThrow();
  });

  it.each([
    ['', 'must not be empty'],
    ['tasks/exit', "must start with '/'"],
    ['/', 'must have at least one component'],
    ['/tasks/', 'failed validation on component "": identifier must not be empty'],
    ['//tasks', 'failed validation on component "": identifier must not be empty'],
    ['/tasks/ex it', 'failed validation on component "ex it": identifier "ex it" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$'],
  ])('rejects %j', (topic, message) => {
    expect(errorOf(() => validateTopic(topic)).message).toBe(message);
  });
});
