import { describe, expect, it } from 'vitest';
import { assertComposition, checkComposition, CompositionInvalidError } from './check.js';
import { coreTokens } from './host.js';
import { definePlugin } from './manifest.js';
import { createContributionPoint, createToken } from './token.js';

const metadataToken = createToken<{ db: true }>('check.metadata');
const contentToken = createToken<{ blobs: true }>('check.content');
const imagesToken = createToken<{ images: true }>('check.images');
const hooksPoint = createContributionPoint<{ hook: true }>('check.hooks');

const base = { type: 'io.berth.check.v1', version: '1.0.0', pluginApi: '^2.0.0' } as const;
let inits = 0;
const init = () => {
  inits += 1;
  return {} as never;
};

const metadata = definePlugin({ ...base, id: 'metadata', provides: metadataToken, requires: { log: coreTokens.logger, dirs: coreTokens.dirs }, init });
const content = definePlugin({ ...base, id: 'content', provides: contentToken, requires: { metadata: metadataToken }, init });
const images = definePlugin({ ...base, id: 'images', provides: imagesToken, requires: { metadata: metadataToken, content: contentToken, hooks: hooksPoint }, init });

describe('checkComposition', () => {
  it('accepts a complete selection and orders it by dependency, running nothing', () => {
    inits = 0;
    const report = checkComposition([images, content, metadata]);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    const order = report.order;
    expect(order.indexOf('io.berth.check.v1.metadata')).toBeLessThan(order.indexOf('io.berth.check.v1.content'));
    expect(order.indexOf('io.berth.check.v1.content')).toBeLessThan(order.indexOf('io.berth.check.v1.images'));
    expect(inits).toBe(0);
  });

  it('refuses a required token with no provider, naming the token and every plugin that requires it', () => {
    const report = checkComposition([content, images]);
    expect(report.ok).toBe(false);
    const missing = report.problems.filter((p) => p.code === 'BERTH_ERR_PLUGIN_DEP_MISSING');
    expect(missing.map((p) => [p.plugin, p.token])).toEqual([
      ['io.berth.check.v1.content', 'check.metadata'],
      ['io.berth.check.v1.images', 'check.metadata'],
    ]);
    expect(missing[0]!.message).toContain('"check.metadata"');
  });

  it('lets optional requirements, all(...) and contribution points go without providers', () => {
    const relaxed = definePlugin({
      ...base,
      id: 'relaxed',
      requires: { maybe: metadataToken.optional, every: contentToken.all, hooks: hooksPoint },
      init,
    });
    expect(checkComposition([relaxed]).problems).toEqual([]);
  });

  it('refuses a pluginApi range the core does not satisfy, naming the plugin, its range and the core version', () => {
    const old = definePlugin({ ...base, id: 'old', version: '0.3.1', pluginApi: '^1.2.0', init });
    const report = checkComposition([metadata, old], { pluginApiVersion: '2.0.0' });
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatchObject({
      code: 'BERTH_ERR_PLUGIN_API_MISMATCH',
      plugin: 'io.berth.check.v1.old',
      pluginVersion: '0.3.1',
      range: '^1.2.0',
      coreVersion: '2.0.0',
    });
    expect(report.problems[0]!.message).toContain('^1.2.0');
    expect(report.problems[0]!.message).toContain('2.0.0');
    // The same plugin fits a core whose version is in its range.
    expect(checkComposition([metadata, old], { pluginApiVersion: '1.4.0' }).problems.map((p) => p.code)).toEqual(['BERTH_ERR_PLUGIN_API_MISMATCH']);
    expect(checkComposition([old], { pluginApiVersion: '1.4.0' }).ok).toBe(true);
  });

  it('a refused provider provides nothing: its dependents are reported, naming it', () => {
    const oldMetadata = definePlugin({ ...base, id: 'metadata', pluginApi: '^9.0.0', provides: metadataToken, init });
    const report = checkComposition([oldMetadata, content]);
    expect(report.problems.map((p) => p.code)).toEqual(['BERTH_ERR_PLUGIN_API_MISMATCH', 'BERTH_ERR_PLUGIN_DEP_MISSING']);
    expect(report.problems[1]!.message).toContain('io.berth.check.v1.metadata');
  });

  it('refuses a cycle, naming the plugins on it', () => {
    const a = definePlugin({ ...base, id: 'a', provides: metadataToken, requires: { c: contentToken }, init });
    const b = definePlugin({ ...base, id: 'b', provides: contentToken, requires: { i: imagesToken }, init });
    const c = definePlugin({ ...base, id: 'c', provides: imagesToken, requires: { m: metadataToken }, init });
    const report = checkComposition([a, b, c]);
    expect(report.problems).toHaveLength(1);
    const cycle = report.problems[0]!;
    expect(cycle.code).toBe('BERTH_ERR_PLUGIN_CYCLE');
    if (cycle.code !== 'BERTH_ERR_PLUGIN_CYCLE') return;
    expect(new Set(cycle.path)).toEqual(new Set(['io.berth.check.v1.a', 'io.berth.check.v1.b', 'io.berth.check.v1.c']));
    expect(cycle.path[0]).toBe(cycle.path[cycle.path.length - 1]);
    expect(report.order).toEqual([]);
  });

  it('refuses non-manifests and a URI selected twice; leaves out disabled URIs', () => {
    const report = checkComposition([metadata, { type: 'x', id: 'y' }, metadata]);
    expect(report.problems.map((p) => p.code)).toEqual(['BERTH_ERR_PLUGIN_MANIFEST', 'BERTH_ERR_PLUGIN_MANIFEST']);
    const withoutMetadata = checkComposition([metadata, content], { disabled: ['io.berth.check.v1.metadata'] });
    expect(withoutMetadata.problems.map((p) => p.code)).toEqual(['BERTH_ERR_PLUGIN_DEP_MISSING']);
  });

  it('counts tokens the program answers itself as provided', () => {
    expect(checkComposition([content], { hostTokens: [metadataToken] }).ok).toBe(true);
  });

  it('assertComposition throws every problem at once', () => {
    const old = definePlugin({ ...base, id: 'old', pluginApi: '^1.0.0', init });
    let thrown: unknown;
    try {
      assertComposition([content, old], { subject: 'distribution demo' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(CompositionInvalidError);
    const err = thrown as CompositionInvalidError;
    expect(err.code).toBe('BERTH_ERR_COMPOSITION_INVALID');
    expect(err.problems.map((p) => p.code).sort()).toEqual(['BERTH_ERR_PLUGIN_API_MISMATCH', 'BERTH_ERR_PLUGIN_DEP_MISSING']);
    expect(err.message).toMatch(/^distribution demo cannot run:/);
  });
});
