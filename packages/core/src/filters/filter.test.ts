import { describe, expect, it } from 'vitest';
import { isInvalidArgument, wireMessageOf } from '../errdefs/index.js';
import { adaptObject } from './adaptor.js';
import { MAX_FILTER_TEXT, parseFilter, parseFilterClauses, parseFilters, type Adaptor } from './filter.js';
import { offThreadMatchesInFlight } from './offload.js';

// A corpus shaped like containerd's filter_test.go, written afresh: records with a name, an optional
// free-text field and labels whose keys contain spaces, dots, quotes and backslashes.
const corpus = [
  { name: 'foo', labels: { foo: 'true' } },
  { name: 'bar' },
  { name: 'foo', labels: { foo: 'present', 'more complex label': 'present' } },
  { name: 'bar', labels: { bar: 'true' } },
  { name: 'fooer', labels: { 'more complex label with \\ and "': 'present' } },
  { name: 'fooer', labels: { 'more complex label with \\ and ".post': 'present' } },
  { name: 'baz', other: 'too complex, yo' },
  { name: 'bazo', other: 'abc' },
  { name: 'compound', labels: { foo: 'omg_asdf.asdf-qwer' } },
];

const matching = (filter: string): number[] => {
  const f = parseFilter(filter);
  return corpus.flatMap((entry, i) => (f.match(adaptObject(entry)) ? [i] : []));
};

const all = corpus.map((_, i) => i);

const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
};

describe('parseFilter over a corpus', () => {
  it.each([
    ['', all],
    ['name', all],
    ['labels.foo', [0, 2, 8]],
    ['labels.foo,name', [0, 2, 8]],
    ['labels.foo==true', [0]],
    ['labels.foo==omg_asdf.asdf-qwer', [8]],
    ['name==bar', [1, 3]],
    ['name!=bar', [0, 2, 4, 5, 6, 7, 8]],
    ['name==bar,labels.bar', [3]],
    ['other=="too complex, yo"', [6]],
    ['other~=[abc]+,name!=foo', [6, 7]],
    ['other~=/[abc]+/,name!=foo', [6, 7]],
    ['other~=|[abc]+|,name!=foo', [6, 7]],
    ['other~=/[abc]{1,2}/,name!=foo', [6, 7]],
    ['other~=/[abc]{0,1}"\\//,name!=foo', []],
    ['name==bar,labels.bar==true', [3]],
    ['name==bar,labels.bar==wrong', []],
    ['name==foo,labels."more complex label"', [2]],
    ['labels."more complex label with \\\\ and \\""==present', [4]],
    ['labels."more complex label with \\\\ and \\"".post==present', [5]],
    ['name == bar', [1, 3]],
    ['name~=^ba', [1, 3, 6, 7]],
    ['name~=^ba$', []],
    ['name~=o$', [0, 2, 7]],
    ['missing!=x', all],
    ['missing~=^$', all],
    ['missing==""', []],
    ['name==""', []],
  ])('%s', (filter, expected) => {
    expect(matching(filter)).toEqual(expected);
  });
});

describe('syntax errors', () => {
  it.each([
    ['labels.|foo|==omg_asdf.asdf-qwer', 'filters: parse error: [labels. >|||< foo|==omg_asdf.asdf-qwer]: invalid quote encountered'],
    [
      'labels.?"more complex label with \\\\ and \\"".post==present',
      'filters: parse error: [labels. >|?|< "more complex label with \\\\ and \\"".post==present]: expected field or quoted',
    ],
    ['name==foo,', 'filters: parse error: [name==foo,]: expected field or quoted'],
    ['labels.', 'filters: parse error: [labels.]: expected field or quoted'],
    ['image~=,id?=?fbaq', 'filters: parse error: [image~= >|,|< id?=?fbaq]: expected value or quoted'],
    ['labels.ns/key==value', 'filters: parse error: [labels.ns >|/|< key==value]: quoted literal not terminated'],
    ['labels.key==/value', 'filters: parse error: [labels.key== >|/|< value]: quoted literal not terminated'],
    ['name=foo', 'filters: parse error: [name >|=|< foo]: unsupported operator "="'],
    ['name===foo', 'filters: parse error: [name >|=|< ==foo]: unsupported operator "==="'],
    ['name foo', 'filters: parse error: [name  >|f|< oo]: expected an operator ("=="|"!="|"~=")'],
    ['name==foo bar', 'filters: parse error: [name==foo >| |< bar]: unexpected input:  '],
    ['name==/foo/', 'filters: parse error: [name== >|/|< foo/]: invalid quote encountered'],
    ['name=="a\\qb"', 'filters: parse error: [name== >|"|< a\\qb"]: illegal escape sequence'],
    ['name=="a\\x4"', 'filters: parse error: [name== >|"|< a\\x4"]: illegal numeric escape sequence'],
    ['name=="\\777"', 'filters: parse error: [name== >|"|< \\777"]: unquoting failed: quote syntax error'],
    ['name=="a\u0000"', 'filters: parse error: [name== >|"|< a\u0000"]: unexpected null'],
    ['name==.x', 'filters: parse error: [name== >|.|< x]: expected value or quoted'],
    [',', 'filters: parse error: [ >|,|< ]: expected field or quoted'],
  ])('%s', (filter, message) => {
    const caught = thrown(() => parseFilter(filter));
    expect(isInvalidArgument(caught)).toBe(true);
    expect((caught as Error).message).toBe(message);
  });

  it('ends on the wire with containerd\'s suffix', () => {
    const err = thrown(() => parseFilters(['name==ok', 'labels.']));
    expect(wireMessageOf(err)).toBe('filters: parse error: [labels.]: expected field or quoted: invalid argument');
  });
});

describe('quoted values', () => {
  const only = (v: string): Adaptor => (p) => (p[0] === 'f' ? v : undefined);

  it.each([
    ['"plain"', 'plain'],
    ['"tab\\there"', 'tab\there'],
    ['"\\a\\b\\f\\n\\r\\v\\\\"', '\u0007\b\f\n\r\v\\'],
    ['"quote \\" inside"', 'quote " inside'],
    ['"\\x41\\101\\u00e9\\U0001F600"', 'AAé😀'],
    ['"\\xc3\\xa9"', 'é'],
    ['"comma, and space"', 'comma, and space'],
    ['"ünïcödé"', 'ünïcödé'],
  ])('%s', (literal, expected) => {
    const f = parseFilter(`f==${literal}`);
    expect(f.match(only(expected))).toBe(true);
    expect(f.match(only(expected + 'x'))).toBe(false);
  });

  it('allows / and | quoting, with their own escapes, only for regexps', () => {
    const f = parseFilter('f~=/^\\/usr\\/bin$/');
    expect(f.match(only('/usr/bin'))).toBe(true);
    expect(f.match(only('/usr/binx'))).toBe(false);
    // |x\|y| unquotes to the alternation x|y
    expect(parseFilter('f~=|^x\\|y$|').match(only('y'))).toBe(true);
    expect(parseFilter('f~=|^x\\|y$|').match(only('z'))).toBe(false);
  });
});

describe('field paths', () => {
  const paths: string[][] = [];
  const recorder: Adaptor = (path) => {
    paths.push([...path]);
    return 'x';
  };

  it('splits on dots and keeps quoted components whole', async () => {
    paths.length = 0;
    await parseFilter('labels."containerd.io/gc.root",a.b_c.D9,"sp ace".x').match(recorder);
    expect(paths).toEqual([['labels', 'containerd.io/gc.root'], ['a', 'b_c', 'D9'], ['sp ace', 'x']]);
  });

  it('lets values hold dots, slashes, equals and colons', () => {
    const f = parseFilter('topic=="/tasks/exit",image==docker.io/library/busybox:1.36,x==a=b');
    const values: Record<string, string> = { topic: '/tasks/exit', image: 'docker.io/library/busybox:1.36', x: 'a=b' };
    expect(f.match((p) => values[p[0]!])).toBe(true);
  });

  it('reads a value that starts with / as a quoted literal, as containerd does (quote topics)', () => {
    expect(() => parseFilter('topic==/tasks/exit')).toThrow(/invalid quote encountered/);
    expect(() => parseFilter('topic~=/tasks/exit')).toThrow('[topic~=/tasks/ >|e|< xit]: unexpected input: e');
    // `~=/tasks/` is the regexp `tasks`
    expect(parseFilter('topic~=/tasks/').match((p) => (p[0] === 'topic' ? '/tasks/exit' : undefined))).toBe(true);
  });
});

describe('parseFilters', () => {
  const obj = adaptObject({ name: 'a', labels: { k: 'v' } });

  it('matches everything for [] and [""]', () => {
    expect(parseFilters([]).match(obj)).toBe(true);
    expect(parseFilters(['']).match(obj)).toBe(true);
    expect(parseFilters(['', 'name==zzz']).match(obj)).toBe(true);
  });

  it('ORs the filters and ANDs the selectors in each', () => {
    expect(parseFilters(['name==b', 'labels.k==v']).match(obj)).toBe(true);
    expect(parseFilters(['name==b', 'labels.k==w']).match(obj)).toBe(false);
    expect(parseFilters(['name==a,labels.k==w']).match(obj)).toBe(false);
    expect(parseFilters(['name==a,labels.k==v']).match(obj)).toBe(true);
  });

  it('rejects the whole list when one filter is malformed', () => {
    expect(() => parseFilters(['name==a', 'name=='])).toThrow(/expected value or quoted/);
  });

  it('makes a selector with an invalid regexp match nothing', () => {
    expect(parseFilters(['name~=[']).match(obj)).toBe(false);
    expect(parseFilters(['name~=[', 'name==a']).match(obj)).toBe(true);
  });
});

describe('parseFilterClauses', () => {
  const shape = (filters: string[]) =>
    parseFilterClauses(filters).map((c) => c.selectors.map((s) => ({ fieldpath: s.fieldpath, operator: s.operator, value: s.value })));

  it('gives the ORed filters as clauses of ANDed selectors, with what each selector tests', () => {
    expect(shape(['extensions."acme.io/ownership".team==payments,labels.a!=b', 'id~=^c', 'image'])).toEqual([
      [
        { fieldpath: ['extensions', 'acme.io/ownership', 'team'], operator: '==', value: 'payments' },
        { fieldpath: ['labels', 'a'], operator: '!=', value: 'b' },
      ],
      [{ fieldpath: ['id'], operator: '~=', value: '^c' }],
      [{ fieldpath: ['image'], operator: 'present', value: '' }],
    ]);
    expect(shape(['extensions."acme.io/ownership".team=="pay ments"'])[0]![0]!.value).toBe('pay ments');
  });

  it('matches everything with no filters or an empty one, and refuses what parseFilters refuses', () => {
    expect(shape([])).toEqual([[]]);
    expect(shape(['id==a', ''])).toEqual([[]]);
    expect(() => parseFilterClauses(['id==a', 'id=='])).toThrow(/expected value or quoted/);
    expect(isInvalidArgument(thrown(() => parseFilterClauses(['x'.repeat(MAX_FILTER_TEXT + 1)])))).toBe(true);
  });

  it('compiles each selector to test alone', () => {
    const [clause] = parseFilterClauses(['labels.k==v,name~=^a$,name!=b']);
    const obj = adaptObject({ name: 'a', labels: { k: 'v' } });
    expect(clause!.selectors.map((s) => s.match(obj))).toEqual([true, true, true]);
    const other = adaptObject({ name: 'b', labels: { k: 'w' } });
    expect(clause!.selectors.map((s) => s.match(other))).toEqual([false, false, false]);
  });
});

describe('regexp selectors', () => {
  const obj = (labels: Record<string, string>) => adaptObject({ name: 'n', labels });

  it('take flag groups anywhere in the expression (Go syntax)', () => {
    expect(parseFilter('labels.k~="a(?i)b"').match(obj({ k: 'xaBx' }))).toBe(true);
    expect(parseFilter('labels.k~="a(?i)b"').match(obj({ k: 'xABx' }))).toBe(false);
  });

  it('run a match too costly for the event loop on the worker thread, with the same verdict', { timeout: 60_000 }, async () => {
    // ~300 instructions x 1000 characters: above INLINE_MATCH_COST, cheap on the worker.
    const value = 'a'.repeat(1000);
    const f = parseFilter('labels.k~="(?:a?){100}a{100}",name==n');
    const verdict = f.match(obj({ k: value }));
    expect(verdict).toBeInstanceOf(Promise);
    expect(offThreadMatchesInFlight()).toBe(1);
    // The event loop stays free while the worker matches.
    const ticks = await countTicksUntil(verdict as Promise<boolean>);
    await expect(verdict).resolves.toBe(true);
    expect(ticks).toBeGreaterThan(0);
    await expect(parseFilter('labels.k~="(?:a?){100}a{100}b"').match(obj({ k: value }))).resolves.toBe(false);
    // ANDed and ORed with the rest.
    await expect(parseFilter('labels.k~="(?:a?){100}a{100}",name==m').match(obj({ k: value }))).resolves.toBe(false);
    expect(parseFilter('name==m,labels.k~="(?:a?){100}a{100}"').match(obj({ k: value }))).toBe(false);
    await expect(parseFilters(['labels.k~="(?:a?){100}a{100}b"', 'name==n']).match(obj({ k: value }))).resolves.toBe(true);
    expect(parseFilters(['name==n', 'labels.k~="(?:a?){100}a{100}b"']).match(obj({ k: value }))).toBe(true);
    expect(offThreadMatchesInFlight()).toBe(0);
  });

  it('keep cheap matches synchronous', () => {
    expect(parseFilter('labels.k~="^v+$"').match(obj({ k: 'v'.repeat(100) }))).toBe(true);
  });
});

describe('limits', () => {
  const obj = adaptObject({ name: 'a' });

  it(`refuse more than ${MAX_FILTER_TEXT} characters of filters in a request`, () => {
    const long = `name==${'x'.repeat(MAX_FILTER_TEXT)}`;
    const err = thrown(() => parseFilters([long]));
    expect(isInvalidArgument(err)).toBe(true);
    expect((err as Error).message).toMatch(/more than 65536/);
    const many = Array.from({ length: 1000 }, () => `name==${'y'.repeat(70)}`);
    expect(isInvalidArgument(thrown(() => parseFilters(many)))).toBe(true);
    expect(parseFilters(many.slice(0, 100)).match(obj)).toBe(false);
  });

  it('refuse regexps that compile to more than MAX_REGEXP_PROGRAM instructions in all', () => {
    expect(parseFilters(['name~="^a{1000}"', 'name~="^b{1000}"']).match(obj)).toBe(false);
    const err = thrown(() => parseFilters(['name~="^a{1000}"', 'name~="^b{1000}"', 'name~="^c{100}"']));
    expect(isInvalidArgument(err)).toBe(true);
    expect(wireMessageOf(err)).toMatch(/^filters: regexps of the filters compile to \d+ instructions in all, more than 2048/);
    expect(wireMessageOf(thrown(() => parseFilter('name~="x{1000}y{1000}z{1000}"')))).toMatch(
      /^filters: regexp "x\{1000\}y\{1000\}z\{1000\}": program of about \d+ instructions exceeds 2048: invalid argument$/,
    );
  });
});

/** How many macrotask turns the event loop runs before `promise` settles. */
async function countTicksUntil(promise: Promise<unknown>): Promise<number> {
  let settled = false;
  void promise.finally(() => (settled = true));
  let ticks = 0;
  while (!settled) {
    await new Promise((r) => setImmediate(r));
    ticks++;
  }
  return ticks;
}
