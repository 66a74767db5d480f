// The differential test: berth's `~=` engine against Go's own regexp package. testdata/go-regexp-verdicts.json is
// what real Go printed for tools/regexp-corpus/corpus.json (how to regenerate it: tools/regexp-corpus/README.md);
// running this test needs no Go.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isInvalidArgument } from '../errdefs/index.js';
import { compileGoRegexp, type GoRegexp } from './regexp.js';

interface Verdicts {
  readonly go: string;
  readonly groups: readonly {
    readonly name: string;
    readonly inputs: readonly string[];
    readonly verdicts: readonly { readonly pattern: string; readonly error?: string; readonly matches?: string }[];
  }[];
}

const verdicts = JSON.parse(
  readFileSync(new URL('./testdata/go-regexp-verdicts.json', import.meta.url), 'utf8'),
) as Verdicts;

/** Corpus patterns that Go compiles but that are bigger than berth accepts (refused with InvalidArgument). */
const BEYOND_LIMITS = new Set<string>([]);

type Outcome = { kind: 'error' } | { kind: 'limit' } | { kind: 'ok'; re: GoRegexp };

function compile(pattern: string): Outcome {
  try {
    const re = compileGoRegexp(pattern);
    return re ? { kind: 'ok', re } : { kind: 'error' };
  } catch (err) {
    if (isInvalidArgument(err)) return { kind: 'limit' };
    throw err;
  }
}

describe(`Go regexp verdicts (${verdicts.go})`, () => {
  const total = verdicts.groups.reduce((n, g) => n + g.verdicts.length * g.inputs.length, 0);

  it('the corpus is broad', () => {
    expect(verdicts.groups.reduce((n, g) => n + g.verdicts.length, 0)).toBeGreaterThan(600);
    expect(total).toBeGreaterThan(20_000);
    expect(verdicts.groups.flatMap((g) => g.verdicts).filter((v) => v.error).length).toBeGreaterThan(100);
  });

  for (const group of verdicts.groups) {
    it(`${group.name}: same compile errors and matches as Go`, () => {
      const differences: string[] = [];
      for (const { pattern, error, matches } of group.verdicts) {
        const outcome = compile(pattern);
        if (outcome.kind === 'limit') {
          if (!BEYOND_LIMITS.has(pattern)) differences.push(`${JSON.stringify(pattern)}: refused by berth's limits`);
          continue;
        }
        if (BEYOND_LIMITS.has(pattern)) differences.push(`${JSON.stringify(pattern)}: expected beyond the limits`);
        if (error !== undefined) {
          if (outcome.kind === 'ok') differences.push(`${JSON.stringify(pattern)}: compiles, Go says ${error}`);
          continue;
        }
        if (outcome.kind === 'error') {
          differences.push(`${JSON.stringify(pattern)}: does not compile, Go compiles it`);
          continue;
        }
        group.inputs.forEach((input, k) => {
          const got = outcome.re.test(input);
          if (got !== (matches![k] === '1')) {
            differences.push(`${JSON.stringify(pattern)} on ${JSON.stringify(input.slice(0, 40))}: ${got}, Go ${!got}`);
          }
        });
      }
      expect(differences).toEqual([]);
    });
  }
});
