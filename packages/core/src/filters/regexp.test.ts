import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { isInvalidArgument } from '../errdefs/index.js';
import { adaptGoSyntax } from './go-syntax.js';
import { compileGoRegexp, MAX_REGEXP_LENGTH, MAX_REGEXP_PROGRAM } from './regexp.js';

const matches = (pattern: string, text: string): boolean => {
  const re = compileGoRegexp(pattern);
  if (!re) throw new Error(`did not compile: ${pattern}`);
  return re.test(text);
};

describe('compileGoRegexp', () => {
  it.each([
    // [pattern, text, expected]
    ['abc', 'xxabcxx', true],
    ['^abc$', 'abc\n', false],
    ['(?i)^ABC$', 'abc', true],
    ['(?i)(?s)^a.c$', 'A\nC', true],
    ['^(?i)CONTENT$', 'content', true],
    ['\\A(?is)a.c', 'A\nC', true],
    ['^(?i)abc', 'xabc', false],
    ['^a.c$', 'a\nc', false],
    ['(?m)^b$', 'a\nb\nc', true],
    ['(?i-s)^a.c$', 'A\nc', false],
    ['\\Aab', 'ab', true],
    ['(?m)\\Ab', 'a\nb', false],
    ['(?m)a\\z', 'a\n', false],
    ['(?m)a$', 'a\n', true],
    ['(?P<word>\\w+)-(?P<n>\\d+)', 'task-12', true],
    ['^\\Q.*+?\\E$', '.*+?', true],
    ['^\\Q.*+?\\E$', 'abcd', false],
    ['^\\Qa.b', 'a.b', true],
    ['^[[:alpha:]]+$', 'abcXYZ', true],
    ['^[[:alpha:]]+$', 'abc1', false],
    ['^[[:^digit:]]+$', 'abc-', true],
    ['^[[:^digit:]]+$', 'ab1', false],
    ['^[^[:space:]]+$', 'a\tb', false],
    ['^[[:xdigit:]_]+$', 'deadBEEF_', true],
    ['^\\s$', '\u000b', false],
    ['^\\s$', '\u00a0', false],
    ['^\\S+$', 'é\u00a0', true],
    ['^[\\s\\d]+$', ' 1 2', true],
    ['^[^\\S]$', ' ', true],
    ['(?i)^\\w+$', 'K\u212a', true], // RE2 case-folds \w too (Kelvin sign)
    ['^\\w+$', 'K\u212a', false],
    ['^\\W$', 'é', true],
    ['^\\pL+$', 'éü', true],
    ['^\\PL$', '1', true],
    ['^\\p{Greek}+$', 'αβγ', true],
    ['^\\p{Greek}+$', 'abc', false],
    ['^\\p{^Greek}+$', 'abc', true],
    ['^\\p{Lu}$', 'A', true],
    ['^\\x{1F600}$', '😀', true],
    ['^\\x41\\101$', 'AA', true],
    ['^a\\.b\\_c\\-d\\/e$', 'a.b_c-d/e', true],
    ['^a\\.b$', 'axb', false],
    ['^[a\\-z]+$', 'a-z', true],
    ['^[a\\-z]+$', 'b', false],
    ['^[]a]+$', ']a]', true],
    ['^a{2}$', 'aa', true],
    ['^a{2,}$', 'aaaa', true],
    ['^a{,2}$', 'a{,2}', true],
    ['^a{$', 'a{', true],
    ['^a}]$', 'a}]', true],
    ['^[a[]+$', 'a[', true],
    ['^.$', '😀', true],
    ['^(?:ab)+$', 'abab', true],
    ['^a*?b$', 'aab', true],
  ])('%s on %j -> %s', (pattern, text, expected) => {
    expect(matches(pattern, text)).toBe(expected);
  });

  it.each([
    // Flag groups anywhere, as Go has them (the JavaScript translation only took them at the start).
    ['a(?i)b', 'aB', true],
    ['a(?i)b', 'AB', false],
    ['a\n(?m)^b$', 'a\nb\nc', true],
    ['a\n^b$', 'a\nb\nc', false],
    ['(?U)a+', 'aaa', true],
    ['(?U)^(a+)(a*)$', 'aaa', true],
    ['x(?s:.)y', 'x\ny', true],
    ['x(?s:.)y.', 'x\ny\n', false],
    ['(?i:A)b', 'ab', true],
    ['(?i:A)b', 'aB', false],
    ['(?P<n>a)(?P<n>b)', 'ab', true], // Go allows a name twice
  ])('%s on %j -> %s (Go semantics)', (pattern, text, expected) => {
    expect(matches(pattern, text)).toBe(expected);
  });

  it.each(['[', '(', 'a)', '(?=a)', '(?<!a)b', '(?<n>a)', '\\1', '\\C', '\\Z', '\\p{', '\\p{Vithkuqi}', '\\p{Emoji}', '\\p{Cn}',
    'a**', '[[:nope:]]', '\\', 'a{1001}', '(a{500}){3}', '((a{10}){10}){11}', '(?z)a'])(
    'returns null for %j (Go refuses it)',
    (pattern) => {
      expect(compileGoRegexp(pattern)).toBeNull();
    },
  );
});

describe('linear-time matching', () => {
  // Each of these backtracks exponentially (or worse) in JavaScript's RegExp; under RE2 each match is linear.
  // The bound is generous (a stall detector, not a benchmark): the old engine took minutes on 30 characters.
  it.each([
    ['(a+)+$', 'a'.repeat(10_000) + '!'],
    ['(a|aa)+$', 'a'.repeat(10_000) + '!'],
    ['([0-9a-f]+)+!', 'sha256:' + '0123456789abcdef'.repeat(4)],
    ['(x+x+)+y', 'x'.repeat(10_000)],
    ['^(([a-z])+.)+[A-Z]([a-z])+$', 'a'.repeat(10_000) + '!'],
  ])('%s against %d characters finishes at once', (pattern, text) => {
    const re = compileGoRegexp(pattern)!;
    const start = performance.now();
    expect(re.test(text)).toBe(false);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('costs about program size times input length', () => {
    const re = compileGoRegexp('^a{10}$')!;
    expect(re.programSize).toBeGreaterThanOrEqual(10);
    expect(re.cost('x'.repeat(99))).toBe(re.programSize * 100);
  });
});

describe('limits', () => {
  it('refuses patterns longer than MAX_REGEXP_LENGTH with InvalidArgument', () => {
    expect(compileGoRegexp('a'.repeat(MAX_REGEXP_LENGTH))).not.toBeNull();
    expect(() => compileGoRegexp('a'.repeat(MAX_REGEXP_LENGTH + 1))).toThrow(/longer than 1024 characters/);
    try {
      compileGoRegexp('a'.repeat(MAX_REGEXP_LENGTH + 1));
    } catch (err) {
      expect(isInvalidArgument(err)).toBe(true);
    }
  });

  it('refuses programs bigger than MAX_REGEXP_PROGRAM before compiling them', () => {
    expect(compileGoRegexp('x{1000}y{1000}')!.programSize).toBeLessThanOrEqual(MAX_REGEXP_PROGRAM);
    // Go compiles these (each count within 1000, nested counts within 1000), berth does not.
    for (const big of ['x{1000}y{1000}z{1000}', '(?:ab|cd){1000}', '(?:[a-z]{10}){100}(?:[0-9]{10}){100}x{100}']) {
      const start = performance.now();
      expect(() => compileGoRegexp(big)).toThrow(/instructions exceeds 2048/);
      expect(performance.now() - start).toBeLessThan(50);
    }
  });

  it('estimates no smaller than re2js compiles, on the corpus of the differential test', () => {
    const verdicts = JSON.parse(readFileSync(new URL('./testdata/go-regexp-verdicts.json', import.meta.url), 'utf8')) as {
      groups: { verdicts: { pattern: string; error?: string }[] }[];
    };
    const under: string[] = [];
    for (const { pattern, error } of verdicts.groups.flatMap((g) => g.verdicts)) {
      if (error !== undefined || pattern.length > MAX_REGEXP_LENGTH) continue;
      const adapted = adaptGoSyntax(pattern)!;
      const re = compileGoRegexp(pattern);
      if (re && re.programSize > adapted.estimate) under.push(`${pattern}: ${adapted.estimate} < ${re.programSize}`);
    }
    expect(under).toEqual([]);
  });
});

describe('loading', () => {
  it('loads re2js only when a pattern is compiled', async () => {
    vi.resetModules();
    const fresh = await import('./regexp.js');
    const { parseFilters } = await import('./filter.js');
    parseFilters(['name==a,labels.x!=b', 'id']);
    expect(fresh.regexpEngineLoaded()).toBe(false);
    parseFilters(['name~=^a']);
    expect(fresh.regexpEngineLoaded()).toBe(true);
  });
});
