import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadServerConfigFile, parseServerConfigToml, renderServerConfig, ttrpcAddressOf, validateServerConfig } from './server-config.js';

describe('server config', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('fills containerd-like defaults', () => {
    const config = validateServerConfig({});
    expect(config).toMatchObject({
      version: 2,
      root: '/var/lib/berth',
      state: '/run/berth',
      grpc: { address: '/run/berth/berth.sock', uid: 0, gid: 0, max_recv_message_size: 16777216 },
      disabled_plugins: [],
      plugins: {},
    });
    expect(ttrpcAddressOf(config)).toBe('/run/berth/berth.sock.ttrpc');
  });

  it('reads TOML with plugin sections and round-trips through render', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-config-'));
    const file = join(dir, 'config.toml');
    await writeFile(
      file,
      ['version = 2', 'root = "/tmp/r"', '[grpc]', 'address = "/tmp/x.sock"', '[plugins."io.containerd.gc.v1.scheduler"]', 'pause_threshold = 0.5'].join('\n'),
    );
    const config = await loadServerConfigFile(file);
    expect(config.root).toBe('/tmp/r');
    expect(config.plugins['io.containerd.gc.v1.scheduler']).toEqual({ pause_threshold: 0.5 });
    expect(validateServerConfig(parseServerConfigToml(renderServerConfig(config)))).toEqual(config);
  });

  it('rejects unknown top-level keys and bad types, all at once, naming the path', () => {
    expect(() => validateServerConfig({ roots: '/x', grpc: { adress: 'y', uid: -1 } }, 'c.toml')).toThrowError(
      /in c\.toml:\n {2}\/roots: unknown key "roots"\n {2}\/grpc\/adress: unknown key "adress"\n {2}\/grpc\/uid: must be >= 0/,
    );
  });

  it('reports TOML syntax errors as invalid configuration', () => {
    expect(() => parseServerConfigToml('root = ', 'bad.toml')).toThrowError(/invalid configuration in bad\.toml/);
  });
});
