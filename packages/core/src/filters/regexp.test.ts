import { describe, expect, it } from 'vitest';
import { compileGoRegexp } from './regexp.js';

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

  it.each(['[', '(', 'a)', '(?U)a', 'a(?i)b', '^(?m)a', '(?=a)', '(?<!a)b', '\\1', '\\C', '\\p{', 'a**', '[[:nope:]]', '\\'])(
    'returns null for %j (invalid RE2, or beyond the mapping)',
    (pattern) => {
      expect(compileGoRegexp(pattern)).toBeNull();
    },
  );
});
