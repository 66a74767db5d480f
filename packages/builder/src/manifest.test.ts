import { describe, expect, it } from 'vitest';
import { parseDistributionManifest } from './manifest.js';

const valid = `
[distribution]
name = "demo-store"
version = "1.2.3"

[[plugins]]
package = "@berth/plugin-content-local"
version = "^0.1.0"

[[plugins]]
package = "@berth/core"
export = "exchangePlugin"

[[plugins]]
path = "./local"

[config]
root = "/var/lib/demo"
[config.grpc]
address = "/run/demo/demo.sock"
`;

const problemsOf = (text: string): string[] => {
  try {
    parseDistributionManifest(text, 'demo.toml');
  } catch (err) {
    return [...((err as { problems?: string[] }).problems ?? [(err as Error).message])];
  }
  return [];
};

describe('parseDistributionManifest', () => {
  it('reads the distribution, the plugins in order and the config', () => {
    const m = parseDistributionManifest(valid, 'demo.toml');
    expect(m.name).toBe('demo-store');
    expect(m.version).toBe('1.2.3');
    expect(m.plugins).toEqual([
      { package: '@berth/plugin-content-local', version: '^0.1.0' },
      { package: '@berth/core', export: 'exchangePlugin' },
      { path: './local' },
    ]);
    expect(m.config.root).toBe('/var/lib/demo');
    expect(m.config.grpc.address).toBe('/run/demo/demo.sock');
    // Defaults filled in for what the manifest leaves out, the raw table kept as written.
    expect(m.config.disabled_plugins).toEqual([]);
    expect(m.rawConfig).toEqual({ root: '/var/lib/demo', grpc: { address: '/run/demo/demo.sock' } });
  });

  it('reports every problem at once, each naming its key', () => {
    const problems = problemsOf(`
extra = 1
[distribution]
name = "Bad Name"
version = "one"
colour = "blue"
[[plugins]]
package = "@berth/plugin-content-local"
path = "./also"
[[plugins]]
path = "./x"
version = "1.0.0"
[[plugins]]
package = "NOT A PACKAGE"
[[plugins]]
package = "ok"
version = "not a range"
export = "1bad"
[config]
root = 7
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('extra: unknown key'),
        expect.stringContaining('distribution.colour: unknown key'),
        expect.stringContaining('distribution.name:'),
        expect.stringContaining('distribution.version:'),
        expect.stringContaining('plugins[0]: give exactly one of package or path'),
        expect.stringContaining('plugins[1].version: only for a package'),
        expect.stringContaining('plugins[2].package: must be a package name'),
        expect.stringContaining('plugins[3].version: must be a semver'),
        expect.stringContaining('plugins[3].export: must be an export name'),
        expect.stringContaining('config: '),
      ]),
    );
    expect(problems).toHaveLength(10);
  });

  it('refuses a manifest without plugins or distribution, and TOML syntax errors', () => {
    expect(problemsOf('[config]\n')).toEqual(
      expect.arrayContaining([expect.stringContaining('[distribution]: missing'), expect.stringContaining('[[plugins]]: the distribution names no plugins')]),
    );
    expect(problemsOf('[distribution\nname = 1')).toHaveLength(1);
  });
});
