import { expectFailure } from '@berth/core/testing';
import { parseFilters } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { whereToFilters } from './where.js';

describe('whereToFilters', () => {
  it('rewrites ext.<name> to extensions.<name>, keeping every field and value exactly', () => {
    expect(whereToFilters(['ext."acme.io/ownership".team=="payments"'])).toEqual(['"extensions"."acme.io/ownership"."team"=="payments"']);
    expect(whereToFilters(['ext."a.io/x".owner.email~="^a\\\\.b",labels."k"!=v,ext."a.io/x".team'])).toEqual([
      '"extensions"."a.io/x"."owner"."email"~="^a\\\\.b","labels"."k"!="v","extensions"."a.io/x"."team"',
    ]);
  });

  it('leaves filters without the shorthand as they are, ext as a value or a label included', () => {
    const kept = ['labels.ext==1', 'id==ext', 'extensions."a.io/x".team==a', '', 'labels."ext"'];
    expect(whereToFilters(kept)).toEqual(kept);
  });

  it('gives the same selectors to the filter engine as the long form', () => {
    const [short] = whereToFilters(['ext."a.io/x".team=="pay ments",id~=/c[0-9]/']);
    const adaptor = (path: readonly string[]) => ({ 'extensions.a.io/x.team': 'pay ments', id: 'c7' })[path.join('.')];
    expect(parseFilters([short!]).match(adaptor)).toBe(true);
    expect(parseFilters([short!]).match((p) => (p[0] === 'id' ? 'cx' : adaptor(p)))).toBe(false);
  });

  it('reports a syntax error of a filter using the shorthand as InvalidArgument', async () => {
    await expectFailure(Promise.resolve().then(() => whereToFilters(['ext."a",,'])), 'invalid-argument', 'where: parse error');
  });
});
