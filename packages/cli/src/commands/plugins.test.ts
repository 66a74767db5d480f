import { describe, expect, it } from 'vitest';
import type { containerd } from '@berth/api';
import { formatTable } from '../format.js';
import { formatPluginDetails, grpcCodeName, pluginRows, pluginStatus } from './plugins.js';

type Plugin = containerd.services.introspection.v1.Plugin;

function plugin(fields: Partial<Plugin>): Plugin {
  return { type: 'io.containerd.content.v1', id: 'content', requires: [], platforms: [], exports: {}, capabilities: [], init_err: null, ...fields };
}

const content = plugin({ exports: { 'berth.version': '0.3.1', root: '/var/lib/berth/content' }, platforms: [{ os: 'linux', architecture: 'amd64', variant: '', os_version: '' }] });
const skipped = plugin({ type: 'io.containerd.snapshotter.v1', id: 'overlayfs', init_err: { code: 2, message: 'overlayfs is not supported: skip plugin', details: [] } });
const failed = plugin({ type: 'io.containerd.gc.v1', id: 'scheduler', requires: ['io.containerd.metadata.v1'], capabilities: ['a', 'b'], init_err: { code: 9, message: 'no metadata', details: [] } });

describe('plugins ls', () => {
  it('derives the status from init_err as ctr does', () => {
    expect(pluginStatus(content)).toBe('ok');
    expect(pluginStatus(skipped)).toBe('skip');
    expect(pluginStatus(failed)).toBe('error');
  });

  it('shows the package version from the berth.version export', () => {
    expect(formatTable(pluginRows([content, skipped]))).toBe(
      [
        'TYPE                           ID          VERSION   PLATFORMS     STATUS',
        'io.containerd.content.v1       content     0.3.1     linux/amd64   ok',
        'io.containerd.snapshotter.v1   overlayfs   -         -             skip',
        '',
      ].join('\n'),
    );
  });

  it('details exports, capabilities, requirements and the init error', () => {
    const out = formatPluginDetails([content, failed]);
    expect(out).toContain('Version:       0.3.1');
    expect(out).toContain('Exports:\n               root   /var/lib/berth/content');
    expect(out).not.toMatch(/berth\.version/);
    expect(out).toContain('Requires:\n               io.containerd.metadata.v1');
    expect(out).toContain('Capabilities:  a,b');
    expect(out).toContain('Error:\n               Code:     FailedPrecondition\n               Message:  no metadata');
    expect(out.split('\n\n')).toHaveLength(2);
  });

  it('names gRPC codes like Go', () => {
    expect(grpcCodeName(2)).toBe('Unknown');
    expect(grpcCodeName(12)).toBe('Unimplemented');
    expect(grpcCodeName(99)).toBe('Code(99)');
  });
});
