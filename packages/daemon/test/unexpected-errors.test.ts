// berthd's policy for errors that reach the event loop unhandled (docs/architecture.md): an unhandled rejection is
// logged with its stack and the daemon keeps serving; an uncaught exception is logged with its stack, the daemon
// shuts down (sockets removed, plugins closed) and exits 1. Never silently.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { hasCtr, startBerthd, type Berthd } from './harness.js';

const fixture = fileURLToPath(new URL('./fixtures/misbehaving-plugin.mjs', import.meta.url));
// The fault fires this long after the fixture's init: well after berthd serves, since plugins start in parallel
// and the slowest (the overlayfs probe mounts an overlay) can take several hundred ms on a loaded machine.
const config = (fault: string) =>
  `plugin_packages = ["${fixture}"]\n[plugins."io.example.fixture.v1.misbehaving"]\nfault = "${fault}"\ndelay_ms = 3000`;

async function waitFor(cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!hasCtr())('unexpected errors in berthd', () => {
  let daemon: Berthd | undefined;
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
  });

  it('logs an unhandled rejection with its stack and keeps serving', async () => {
    daemon = await startBerthd({ config: config('rejection'), logLevel: 'info' });
    await waitFor(() => daemon!.logs.includes('unhandled promise rejection'));
    const line = daemon.logs.split('\n').find((l) => l.includes('unhandled promise rejection'))!;
    expect(line).toContain('level=error');
    expect(line).toContain('fixture: rejected on purpose');
    expect(line).toMatch(/stack=".*misbehave .*misbehaving-plugin\.mjs/);
    await new Promise((r) => setTimeout(r, 300));
    expect(daemon.alive).toBe(true);
    const version = await daemon.ctr(['version']);
    expect(version.code, version.stderr).toBe(0);
  });

  it('logs an uncaught exception with its stack, shuts down and exits 1', async () => {
    daemon = await startBerthd({ config: config('exception'), logLevel: 'info' });
    const exit = await daemon.waitExit();
    expect(exit).toEqual({ code: 1, signal: null });
    const line = daemon.logs.split('\n').find((l) => l.includes('uncaught exception'))!;
    expect(line).toContain('level=error');
    expect(line).toMatch(/stack=".*fixture: thrown on purpose.*misbehaving-plugin\.mjs/);
    // The best-effort shutdown ran: plugins closed, sockets gone.
    expect(daemon.logs).toContain('berthd stopped');
    expect(existsSync(daemon.address)).toBe(false);
  });
});
