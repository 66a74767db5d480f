// The launchers tools/bundle.mjs writes (what `berthd` and `berth` on PATH run): they run the bundle from V8's code
// cache, which they make on the first run; code run from the cache must still import plugin packages.
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, DAEMON_MAIN, run } from './harness.js';

const CACHE = `${fileURLToPath(new URL('../dist/berthd.cjs', import.meta.url))}.cache`;
const fixture = fileURLToPath(new URL('./fixtures/configurable-plugin.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'berth-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the berthd launcher', () => {
  it('makes its code cache, and from the cache still loads a plugin package', async () => {
    const config = join(dir, 'config.toml');
    writeFileSync(config, `root = "${dir}/root"\nstate = "${dir}/state"\nplugin_packages = ["${fixture}"]\n[grpc]\naddress = "${dir}/b.sock"\n`);
    rmSync(CACHE, { force: true });
    const first = await run(DAEMON_MAIN, ['config', 'validate', config]);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/^configuration is valid/);
    expect(existsSync(CACHE)).toBe(true);
    expect(statSync(CACHE).size).toBeGreaterThan(100_000);
    const second = await run(DAEMON_MAIN, ['config', 'validate', config]);
    expect(second.stderr).toBe('');
    expect(second.stdout).toBe(first.stdout);
  });

  it('runs as a command (its #! line) and as `node <launcher>`', async () => {
    const direct = await run(DAEMON_MAIN, ['--version']);
    const viaNode = await run(process.execPath, [DAEMON_MAIN, '--version']);
    expect(direct.stdout).toMatch(/^berthd v\d/);
    // berthd is made by createDaemon: --version lists its plugins, one line each with its version.
    expect(direct.stdout).toMatch(/\n {2}io\.containerd\.content\.v1\.content \d+\.\d+\.\d+\n/);
    expect(viaNode.stdout).toBe(direct.stdout);
    const cli = await run(CLI_MAIN, ['--version']);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});
