/**
 * Go regular expressions, as written after `~=`, matched by re2js: a pure-JavaScript port of RE2/J (itself a port
 * of Go's regexp), so matching takes time linear in the input whatever the pattern, and the syntax and semantics
 * are Go's. go-syntax.ts adapts the few places where re2js differs from the Go that builds containerd 1.6; the
 * differential test (go-regexp.test.ts, against verdicts printed by real Go) holds the two together.
 *
 * re2js is loaded on first use, so a process that never compiles a `~=` selector (most CLI commands) never pays
 * for it.
 *
 * Linear is not free: one match costs up to about `programSize × input length` steps. `cost()` tells callers that
 * estimate, so that a match too costly for the event loop can run elsewhere (offload.ts).
 */
import { createRequire } from 'node:module';
import type * as Re2js from 're2js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { adaptGoSyntax } from './go-syntax.js';

/** The longest pattern accepted, in UTF-16 code units (Go's own parse limits cannot be reached below this). */
export const MAX_REGEXP_LENGTH = 1024;
/** The largest compiled program accepted for one pattern, in (estimated) instructions: `a{1000}` fits. */
export const MAX_REGEXP_PROGRAM = 2048;

let engine: typeof Re2js | undefined;
const load = (): typeof Re2js => (engine ??= createRequire(import.meta.url)('re2js') as typeof Re2js);

/** A compiled Go regular expression. */
export interface GoRegexp {
  readonly pattern: string;
  /** What re2js compiles (the pattern after go-syntax.ts), for a matcher elsewhere to compile alike. */
  readonly source: string;
  /** Instructions in the compiled program. */
  readonly programSize: number;
  /** Whether the expression matches anywhere in `input` (Go's MatchString). */
  test(input: string): boolean;
  /** About how many steps `test(input)` can take at worst. */
  cost(input: string): number;
}

/** A pattern that compiles in Go but is beyond berth's limits: refused with InvalidArgumentError. */
function tooLarge(pattern: string, what: string): InvalidArgumentError {
  const shown = pattern.length > 40 ? `${pattern.slice(0, 40)}…` : pattern;
  return new InvalidArgumentError(`regexp ${JSON.stringify(shown)}: ${what}`);
}

/**
 * Compiles a Go regular expression. Returns null when Go's regexp.Compile refuses it (the selector then never
 * matches, as in containerd); throws InvalidArgumentError when it is longer or bigger than berth accepts.
 */
export function compileGoRegexp(pattern: string): GoRegexp | null {
  if (pattern.length > MAX_REGEXP_LENGTH) throw tooLarge(pattern, `longer than ${MAX_REGEXP_LENGTH} characters`);
  const adapted = adaptGoSyntax(pattern);
  if (adapted === null) return null;
  if (adapted.estimate > MAX_REGEXP_PROGRAM) {
    throw tooLarge(pattern, `program of about ${adapted.estimate} instructions exceeds ${MAX_REGEXP_PROGRAM}`);
  }
  let re: Re2js.RE2JS;
  try {
    re = load().RE2JS.compile(adapted.source);
  } catch (err) {
    if (err instanceof load().RE2JSException) return null;
    throw err;
  }
  const programSize = re.programSize();
  return {
    pattern,
    source: adapted.source,
    programSize,
    test: (input) => re.test(input),
    cost: (input) => programSize * (input.length + 1),
  };
}

/** Whether re2js has been loaded in this process (it is, on the first compile). */
export function regexpEngineLoaded(): boolean {
  return engine !== undefined;
}
