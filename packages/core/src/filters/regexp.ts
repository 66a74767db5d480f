/**
 * Go (RE2) regular expressions, as written after `~=`, rewritten for JavaScript's RegExp with the `u` flag.
 *
 * Mapped: leading flag groups `(?i)`, `(?s)`, `(?m)` (also `(?is)`, `(?i-s)`), and `i`/`s` groups right after a
 * leading `^` or `\A` (`^(?i)abc`); `(?P<name>…)`; `\A` and `\z`;
 * `\Q…\E`; the ASCII-only Perl classes `\d \s \w` (RE2's `\s` has no `\v`) and their negations; POSIX classes
 * `[[:alpha:]]`, `[[:^digit:]]`; `\pL`, `\p{Greek}` (scripts) and `\p{^…}`; `\x{10FFFF}`; octal `\123`;
 * escaped punctuation (`\_`, `\-`, …); a `{` that does not start a repeat, and a `]` or `}` outside a class, as
 * literals; `[]…]` (a leading `]` in a class is literal).
 * Not supported (the expression then never matches, as containerd does when a regexp fails to compile): the
 * ungreedy flag `U`, other flag groups inside the expression, and anything that is not RE2 (look-around,
 * back-references).
 */

type Ranges = readonly (readonly [number, number])[];

const PERL: Readonly<Record<string, Ranges>> = {
  d: [[0x30, 0x39]],
  s: [[0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]],
  w: [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]],
};

const POSIX: Readonly<Record<string, Ranges>> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};

/** General categories keep their name in JS (`\p{Lu}`); any other name is a script (`\p{Script=Greek}`). */
const CATEGORY = /^(?:[CLMNPSZ]|C[cfos]|L[lmotu]|M[cen]|N[dlo]|P[cdefios]|S[ckmo]|Z[lps]|Any)$/;

class UnsupportedRegexpError extends Error {}

const hex = (cp: number) => `\\u{${cp.toString(16)}}`;
const rangesText = (ranges: Ranges) => ranges.map(([lo, hi]) => (lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`)).join('');

function complement(ranges: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of ranges) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

/** A class as text: bare ranges inside `[...]`, a bracketed class outside. */
function classText(ranges: Ranges, negated: boolean, inClass: boolean): string {
  if (inClass) return rangesText(negated ? complement(ranges) : ranges);
  return `[${negated ? '^' : ''}${rangesText(ranges)}]`;
}

function property(name: string, negated: boolean): string {
  let positive = !negated;
  let bare = name;
  if (bare.startsWith('^')) {
    positive = !positive;
    bare = bare.slice(1);
  }
  if (!/^[A-Za-z_]+$/.test(bare)) throw new UnsupportedRegexpError(name);
  return `\\${positive ? 'p' : 'P'}{${CATEGORY.test(bare) ? bare : `Script=${bare}`}}`;
}

/** Consumes flag groups `(?is)`, `(?i-s)` at the start of `pattern`, allowing only the flags in `allowed`. */
function takeFlagGroups(pattern: string, allowed: string, initial = ''): { flags: string; rest: string } {
  let flags = initial;
  let rest = pattern;
  for (let m = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?\)/.exec(rest); m; m = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?\)/.exec(rest)) {
    for (const f of m[1] ?? '') {
      if (!allowed.includes(f)) throw new UnsupportedRegexpError(f);
      if (!flags.includes(f)) flags += f;
    }
    for (const f of m[2] ?? '') {
      if (!allowed.includes(f)) throw new UnsupportedRegexpError(f);
      flags = flags.replace(f, '');
    }
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

/**
 * Flags that apply to the whole expression: groups at the very start, and (as people write `^(?i)abc`) groups right
 * after a leading `^` or `\A`. Only `i` and `s` are taken there, since they do not change what the anchor matches.
 */
function leadingFlags(pattern: string): { flags: string; rest: string } {
  const first = takeFlagGroups(pattern, 'ims');
  const anchor = /^(?:\^|\\A)/.exec(first.rest)?.[0];
  if (!anchor) return first;
  const after = takeFlagGroups(first.rest.slice(anchor.length), 'is', first.flags);
  return { flags: after.flags, rest: anchor + after.rest };
}

/** Rewrites one escape at `src[i] === '\\'`; returns the JS text and the index after the escape. */
function escape(src: string, i: number, inClass: boolean): [string, number] {
  const c = src[i + 1];
  if (c === undefined) throw new UnsupportedRegexpError('trailing backslash');
  if (c === 'A' && !inClass) return ['(?<![\\s\\S])', i + 2];
  if (c === 'z' && !inClass) return ['(?![\\s\\S])', i + 2];
  if (c === 'Q') {
    const end = src.indexOf('\\E', i + 2);
    const literal = src.slice(i + 2, end < 0 ? src.length : end);
    return [[...literal].map((ch) => hex(ch.codePointAt(0)!)).join(''), end < 0 ? src.length : end + 2];
  }
  const lower = c.toLowerCase();
  if (lower in PERL) return [classText(PERL[lower]!, c !== lower, inClass), i + 2];
  if (c === 'p' || c === 'P') {
    if (src[i + 2] === '{') {
      const close = src.indexOf('}', i + 3);
      if (close < 0) throw new UnsupportedRegexpError('unterminated \\p{');
      return [property(src.slice(i + 3, close), c === 'P'), close + 1];
    }
    const name = src[i + 2];
    if (name === undefined) throw new UnsupportedRegexpError('\\p');
    return [property(name, c === 'P'), i + 3];
  }
  if (c === 'x' && src[i + 2] === '{') {
    const m = /^\{([0-9A-Fa-f]{1,6})\}/.exec(src.slice(i + 2));
    if (!m || parseInt(m[1]!, 16) > 0x10ffff) throw new UnsupportedRegexpError('\\x{');
    return [hex(parseInt(m[1]!, 16)), i + 2 + m[0].length];
  }
  if (c >= '0' && c <= '7') {
    const m = /^(?:0[0-7]{0,2}|[1-7][0-7]{1,2})/.exec(src.slice(i + 1));
    if (!m) throw new UnsupportedRegexpError('back-reference');
    return [hex(parseInt(m[0], 8)), i + 1 + m[0].length];
  }
  if (c === 'a') return ['\\x07', i + 2];
  if ('fnrtvx'.includes(c) || (!inClass && 'bB'.includes(c))) return [`\\${c}`, i + 2];
  if (/^[!-/:-@[-`{-~]$/.test(c)) return [`\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`, i + 2];
  throw new UnsupportedRegexpError(`\\${c}`);
}

/** Rewrites a character class starting at `src[i] === '['`; returns the JS text and the index after it. */
function characterClass(src: string, i: number): [string, number] {
  let out = '[';
  let j = i + 1;
  if (src[j] === '^') {
    out += '^';
    j++;
  }
  if (src[j] === ']') {
    out += '\\]';
    j++;
  }
  while (j < src.length && src[j] !== ']') {
    const posix = /^\[:(\^?)([a-z]+):\]/.exec(src.slice(j));
    if (posix) {
      const ranges = POSIX[posix[2]!];
      if (!ranges) throw new UnsupportedRegexpError(posix[0]);
      out += classText(ranges, posix[1] === '^', true);
      j += posix[0].length;
    } else if (src[j] === '\\') {
      const [text, next] = escape(src, j, true);
      out += text;
      j = next;
    } else if (src[j] === '[') {
      out += '\\[';
      j++;
    } else {
      out += src[j];
      j++;
    }
  }
  if (j >= src.length) throw new UnsupportedRegexpError('missing ]');
  return [out + ']', j + 1];
}

function translate(pattern: string): { source: string; flags: string } {
  const { flags, rest: src } = leadingFlags(pattern);
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      const [text, next] = escape(src, i, false);
      out += text;
      i = next;
    } else if (c === '[') {
      const [text, next] = characterClass(src, i);
      out += text;
      i = next;
    } else if (c === '(' && src[i + 1] === '?') {
      if (src.startsWith('(?:', i)) {
        out += '(?:';
        i += 3;
      } else if (src.startsWith('(?P<', i)) {
        out += '(?<';
        i += 4;
      } else if (/^\(\?<[A-Za-z_]/.test(src.slice(i))) {
        out += '(?<';
        i += 3;
      } else {
        throw new UnsupportedRegexpError('group flags');
      }
    } else if (c === '{') {
      const repeat = /^\{\d+(?:,\d*)?\}/.exec(src.slice(i))?.[0];
      out += repeat ?? '\\{';
      i += repeat?.length ?? 1;
    } else if (c === '}' || c === ']') {
      out += `\\${c}`;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return { source: out, flags };
}

/** Compiles a Go regular expression, or returns null when it cannot be (invalid, or beyond the mapping). */
export function compileGoRegexp(pattern: string): RegExp | null {
  try {
    const { source, flags } = translate(pattern);
    return new RegExp(source, `${flags}u`);
  } catch {
    return null;
  }
}
