// berthd composes the overlayfs snapshotter: `ctr plugins ls` shows it `ok` where overlayfs mounts, and `skip` with
// the probe's reason where it cannot (simulated with the plugin's simulate_unavailable), while berthd serves on.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Berthd, hasCtr, hasRoot, startBerthd } from './harness.js';

const URI = 'io.containerd.snapshotter.v1.overlayfs';
const platform = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;

/** The `ctr plugins ls` rows as {uri: [platforms, status]}. */
async function pluginRows(daemon: Berthd): Promise<Record<string, [string, string]>> {
  const r = await daemon.ctr(['plugins', 'ls']);
  expect(r.code, r.stderr).toBe(0);
  const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
  return Object.fromEntries(rows.map(([type, id, platforms, status]) => [`${type}.${id}`, [platforms!, status!]]));
}

/** The block `ctr plugins ls -d` prints for the overlayfs snapshotter. */
async function overlayBlock(daemon: Berthd): Promise<string> {
  const r = await daemon.ctr(['plugins', 'ls', '-d']);
  expect(r.code, r.stderr).toBe(0);
  const block = r.stdout.split(/\n\s*\n/).find((b) => /Type:\s+io\.containerd\.snapshotter\.v1\nID:\s+overlayfs\n/.test(b));
  expect(block, r.stdout).toBeDefined();
  return block!;
}

describe.skipIf(!hasRoot() || !hasCtr())('berthd with the overlayfs snapshotter', () => {
  let daemon: Berthd | undefined;
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
  });

  it('lists overlayfs as ok with its platform and root, and creates its layout', async () => {
    daemon = await startBerthd();
    const rows = await pluginRows(daemon);
    expect(rows[URI]).toEqual([platform, 'ok']);
    const block = await overlayBlock(daemon);
    expect(block).toMatch(new RegExp(`\\n\\s+root\\s+${join(daemon.root, URI).replaceAll('.', '\\.')}\\n`));
    expect(block).not.toMatch(/Error:/);
    // The probe unmounted and removed its directory.
    expect((await readdir(join(daemon.root, URI))).sort()).toEqual(['metadata.lmdb', 'metadata.lmdb-lock', 'snapshots']);
  });

  it('with overlayfs unavailable (simulate_unavailable), lists it as skip with the reason, and the rest serves', async () => {
    daemon = await startBerthd({ config: `[plugins."${URI}"]\nsimulate_unavailable = true` });
    const rows = await pluginRows(daemon);
    expect(rows[URI]).toEqual([platform, 'skip']);
    for (const uri of ['io.containerd.content.v1.content', 'io.containerd.metadata.v1.lmdb', 'io.containerd.grpc.v1.introspection']) {
      expect(rows[uri]?.[1], uri).toBe('ok');
    }
    const block = await overlayBlock(daemon);
    expect(block).toMatch(/Error:\s*\n\s+Code:\s+Unknown\n/);
    const message = /Message:\s+(.*)\n?/.exec(block)?.[1];
    expect(message).toMatch(
      new RegExp(
        `^overlayfs is not usable in ${join(daemon.root, URI).replaceAll('.', '\\.')}: "berth-simulated-no-overlay" mount with options ".*" ` +
          `failed: ENODEV: no such device, .*\\(simulate_unavailable is set\\): skip plugin$`,
      ),
    );
    // Nothing mounted nor left behind by the probe; berthd answers.
    expect(await readdir(join(daemon.root, URI))).toEqual([]);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(join(daemon.root, URI));
    const version = await daemon.ctr(['version']);
    expect(version.code, version.stderr).toBe(0);
  });
});
