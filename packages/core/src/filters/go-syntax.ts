/**
 * What stands between a Go regular expression and re2js. re2js ports RE2/J, itself a port of Go's regexp, so it
 * parses Go's syntax with Go's semantics (leftmost-first, flags anywhere, `(?U)`, `\Q…\E`, POSIX classes, the
 * repeat limit of 1000, unanchored search) — except where it has grown past the Go that builds containerd 1.6
 * (Go 1.19). One pass over the pattern, tokenised as Go's parser does (escapes, `\Q…\E`, classes with a leading `]`
 * and `[:name:]`), adapts exactly those places:
 *
 * - `(?<name>…)` is refused: Go 1.19 only knows `(?P<name>…)` (re2js takes both).
 * - `(?P<name>` becomes `(`: names do not change what matches, and Go allows a name twice where re2js does not.
 * - `\p{…}` names outside Go's tables (go-unicode.ts) are refused.
 * - `\pC` is Go's `Cc|Cf|Co|Cs`; re2js's `C` also holds the unassigned code points (`Cn`), so it is spelled out.
 *
 * The pass also estimates the size of the compiled program as re2js counts it (one instruction per literal, class
 * or assertion; repeats multiply; captures add two, alternations and `*+?` one or two), so that a pattern too big to compile within
 * the event loop's budget is refused before re2js spends that time on it.
 */
import { GO_UNICODE_CLASSES } from './go-unicode.js';

export interface AdaptedPattern {
  /** The pattern as re2js must see it to give Go's verdicts. */
  readonly source: string;
  /** About how many instructions the compiled program has (an upper estimate). */
  readonly estimate: number;
}

// Go's \pC is the union of these; re2js's \p{C} adds Cn (unassigned), so \PC is "not C, or unassigned".
const C_POSITIVE = '\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}';
const C_NEGATIVE = '\\P{C}\\p{Cn}';

const FLAGS_ONLY = /^\(\?[imsU]*(?:-[imsU]*)?\)/;
const FLAGS_GROUP = /^\(\?[imsU]*(?:-[imsU]*)?:/;
const NAMED_GROUP = /^\(\?P<([A-Za-z0-9_]+)>/;
// Go's repeat: {n}, {n,}, {n,m}, decimal without leading zeros; anything else is a literal `{`.
const MAX_REPEAT = 1000;
const REPEAT = /^\{(0|[1-9][0-9]{0,7})(,(0|[1-9][0-9]{0,7})?)?\}/;

/**
 * Bookkeeping for one group level: the size of its finished alternatives, of the concatenation in progress and of
 * its last atom; and the largest product of nested `{n,m}` counts inside it, and inside its last atom.
 */
interface Frame {
  done: number;
  concat: number;
  last: number;
  nest: number;
  lastNest: number;
  /** Whether the last atom is a group (a repeated group may match empty: re2js adds an instruction). */
  lastGroup: boolean;
  /** A capturing group costs two instructions (its start and end); other groups none. */
  readonly capture: boolean;
}

const newFrame = (capture = false): Frame => ({ done: 0, concat: 0, last: 0, nest: 1, lastNest: 1, lastGroup: false, capture });

/**
 * Adapts a Go pattern for re2js; null when Go's regexp.Compile refuses it for a reason re2js would not see (the
 * patterns both refuse are left for re2js to refuse).
 */
export function adaptGoSyntax(pattern: string): AdaptedPattern | null {
  let out = '';
  let i = 0;
  const stack: Frame[] = [];
  let frame = newFrame();
  const atom = (size: number, nest = 1, group = false) => {
    frame.concat += size;
    frame.last = size;
    frame.lastGroup = group;
    frame.nest = Math.max(frame.nest, nest);
    frame.lastNest = nest;
  };
  const repeat = (size: number, nest = frame.lastNest) => {
    frame.concat += size - frame.last;
    frame.last = size;
    frame.nest = Math.max(frame.nest, nest);
    frame.lastNest = nest;
  };
  // An empty alternative still compiles to one instruction.
  const alternative = () => frame.concat || 1;
  const close = () => {
    const size = frame.done + alternative() + (frame.capture ? 2 : 0);
    const nest = frame.nest;
    frame = stack.pop() ?? newFrame();
    atom(size, nest, true);
  };

  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '\\') {
      const escape = readEscape(pattern, i, false);
      if (escape === null) return null;
      out += escape.text;
      i = escape.end;
      if (escape.literals !== undefined) for (let k = 0; k < escape.literals; k++) atom(1);
      else atom(1);
      continue;
    }
    if (c === '[') {
      const cls = readClass(pattern, i);
      if (cls === null) return null;
      out += cls.text;
      i = cls.end;
      atom(1);
      continue;
    }
    if (c === '(') {
      const rest = pattern.slice(i);
      if (rest.startsWith('(?<')) return null;
      const flags = FLAGS_ONLY.exec(rest);
      if (flags) {
        out += flags[0];
        i += flags[0].length;
        continue;
      }
      const named = NAMED_GROUP.exec(rest);
      const flagged = named ? null : FLAGS_GROUP.exec(rest);
      if (named) {
        out += '(';
        i += named[0].length;
      } else {
        // Anything else after `(?` is copied as is for re2js to refuse (or accept) as Go does.
        const group = flagged?.[0] ?? (rest.startsWith('(?') ? '(?' : '(');
        out += group;
        i += group.length;
      }
      stack.push(frame);
      frame = newFrame(!flagged);
      continue;
    }
    if (c === ')') {
      out += c;
      i++;
      close();
      continue;
    }
    if (c === '|') {
      out += c;
      i++;
      frame.done += alternative() + 1;
      frame.concat = 0;
      frame.last = 0;
      frame.lastNest = 1;
      continue;
    }
    if (c === '*' || c === '+' || c === '?') {
      out += c;
      i++;
      repeat(frame.last + (frame.lastGroup ? 2 : 1));
      if (pattern[i] === '?') {
        out += '?';
        i++;
      }
      continue;
    }
    if (c === '{') {
      const m = REPEAT.exec(pattern.slice(i, i + 20));
      if (m) {
        const min = Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === undefined ? -1 : Number(m[3]);
        // Go's limits on counts (parse.go): each at most 1000, and nested counts (the max, or the min of
        // `{n,}`) multiplying to at most 1000 along any path, except below a count of 0.
        if (min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && min > max)) return null;
        const count = max < 0 ? min : max;
        const nest = count === 0 ? 1 : count * frame.lastNest;
        if ((min >= 2 || max >= 2) && nest > MAX_REPEAT) return null;
        repeat(max < 0 ? frame.last * Math.max(min, 1) + 1 : frame.last * max + Math.max(max - min, 0), nest);
        out += m[0];
        i += m[0].length;
        if (pattern[i] === '?') {
          out += '?';
          i++;
        }
        continue;
      }
    }
    // A literal (one code point), `.`, `^`, `$`, or a `{` that starts no repeat.
    const cp = String.fromCodePoint(pattern.codePointAt(i)!);
    out += cp;
    i += cp.length;
    atom(1);
  }
  while (stack.length > 0) close(); // a missing `)`: re2js refuses it; the estimate still counts the group
  return { source: out, estimate: frame.done + alternative() + 3 }; // + the match, the unanchored loop, slack
}

interface Escape {
  readonly text: string;
  readonly end: number;
  /** How many literal atoms the escape stands for (`\Q…\E`); one when absent. */
  readonly literals?: number;
}

/** The escape at `src[i] === '\\'`; null when Go refuses it and re2js would not. */
function readEscape(src: string, i: number, inClass: boolean): Escape | null {
  const next = src.codePointAt(i + 1);
  if (next === undefined) return { text: '\\', end: i + 1 }; // trailing backslash: re2js refuses it as Go does
  const c = String.fromCodePoint(next);
  if (c === 'Q' && !inClass) {
    // \Q…\E: everything up to the first \E (or the end) is literal, as Go's strings.Cut finds it.
    const close = src.indexOf('\\E', i + 2);
    const end = close < 0 ? src.length : close + 2;
    return { text: src.slice(i, end), end, literals: [...src.slice(i + 2, close < 0 ? src.length : close)].length };
  }
  if (c === 'p' || c === 'P') return readUnicodeClass(src, i, inClass);
  if (c === 'x' && src[i + 2] === '{') {
    const close = src.indexOf('}', i + 3);
    const end = close < 0 ? src.length : close + 1;
    return { text: src.slice(i, end), end };
  }
  return { text: `\\${c}`, end: i + 1 + c.length };
}

/** `\pN`, `\p{Name}`, `\p{^Name}` and the `\P` forms, read as Go's parseUnicodeClass does. */
function readUnicodeClass(src: string, i: number, inClass: boolean): Escape | null {
  let negated = src[i + 1] === 'P';
  let name: string;
  let end: number;
  if (src[i + 2] === '{') {
    const close = src.indexOf('}', i + 3);
    if (close < 0) return { text: src.slice(i, i + 2), end: i + 2 }; // re2js refuses the unterminated name too
    name = src.slice(i + 3, close);
    end = close + 1;
  } else {
    const cp = src.codePointAt(i + 2);
    if (cp === undefined) return { text: src.slice(i, i + 2), end: i + 2 };
    name = String.fromCodePoint(cp);
    end = i + 2 + name.length;
  }
  if (name.startsWith('^')) {
    negated = !negated;
    name = name.slice(1);
  }
  if (!GO_UNICODE_CLASSES.has(name)) return null;
  if (name !== 'C') return { text: src.slice(i, end), end };
  const members = negated ? C_NEGATIVE : C_POSITIVE;
  return { text: inClass ? members : `[${members}]`, end };
}

/** The class at `src[i] === '['`, through its closing `]` (or the end, which re2js then refuses as Go does). */
function readClass(src: string, i: number): { text: string; end: number } | null {
  let out = '[';
  let j = i + 1;
  if (src[j] === '^') {
    out += '^';
    j++;
  }
  let first = true; // a `]` right after `[` or `[^` is a member
  while (j < src.length && (src[j] !== ']' || first)) {
    first = false;
    if (src[j] === '[' && src[j + 1] === ':') {
      // Go reads `[:` up to the next `:]` as a POSIX class name (refused when unknown).
      const close = src.indexOf(':]', j + 2);
      if (close >= 0) {
        out += src.slice(j, close + 2);
        j = close + 2;
        continue;
      }
    }
    if (src[j] === '\\') {
      const escape = readEscape(src, j, true);
      if (escape === null) return null;
      out += escape.text;
      j = escape.end;
      continue;
    }
    const cp = String.fromCodePoint(src.codePointAt(j)!);
    out += cp;
    j += cp.length;
  }
  if (j < src.length) {
    out += ']';
    j++;
  }
  return { text: out, end: j };
}
