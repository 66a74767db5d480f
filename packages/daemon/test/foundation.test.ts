// The foundation issue's acceptance list, driven with Debian's real ctr against a berthd process on temp dirs.
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Berthd, DAEMON_MAIN, hasCtr, hasRoot, run, startBerthd } from './harness.js';
import { unaryCall } from './grpc-raw.js';
import { packAny, ServiceNames, TtrpcClient } from '@berth/api';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe.skipIf(!hasRoot() || !hasCtr())('berthd with ctr', () => {
  let daemon: Berthd;
  beforeAll(async () => {
    daemon = await startBerthd();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('ctr version prints the server version and a UUID that survives a restart', async () => {
    const first = await daemon.ctr(['version']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Server:\n\s+Version:\s+v\d+\.\d+\.\d+\n\s+Revision:\s+berth-\S+\n\s+UUID:\s+([0-9a-f-]{36})/);
    const uuid = /UUID:\s+(\S+)/.exec(first.stdout)![1];
    const dir = daemon.dir;
    await daemon.stop({ keepDir: true });
    daemon = await startBerthd({ dir });
    const second = await daemon.ctr(['version']);
    expect(/UUID:\s+(\S+)/.exec(second.stdout)![1]).toBe(uuid);
  });

  it('ctr plugins ls lists every loaded plugin with status ok', async () => {
    const r = await daemon.ctr(['plugins', 'ls']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/));
    const byUri = Object.fromEntries(rows.map(([type, id, , status]) => [`${type}.${id}`, status]));
    for (const uri of [
      'io.containerd.content.v1.content',
      'io.containerd.snapshotter.v1.native',
      'io.containerd.metadata.v1.lmdb',
      'io.containerd.event.v1.exchange',
      'io.containerd.gc.v1.scheduler',
      'io.containerd.grpc.v1.introspection',
      'io.containerd.grpc.v1.namespaces',
      'io.containerd.grpc.v1.events',
      'io.containerd.grpc.v1.version',
      'io.containerd.grpc.v1.healthcheck',
      'io.containerd.runtime.v2.task',
    ]) {
      expect(byUri[uri], uri).toBe('ok');
    }
    const detailed = await daemon.ctr(['plugins', 'ls', '-d']);
    expect(detailed.code).toBe(0);
    // ctr prints a plugin's exports in Go map order, which is random: find `root` among them.
    const content = /Type:\s+io\.containerd\.content\.v1\nID:\s+content\nExports:\s*\n((?:[ \t]+\S+[ \t]+\S+\n)+)/.exec(detailed.stdout);
    expect(content, detailed.stdout).not.toBeNull();
    expect(/^\s+root\s+(\S+)$/m.exec(content![1]!)?.[1]).toBe(`${daemon.root}/io.containerd.content.v1.content`);
    const native = /Type:\s+io\.containerd\.snapshotter\.v1\nID:\s+native\nPlatforms:\s+(\S+)\nExports:\s*\n((?:[ \t]+\S+[ \t]+\S+\n)+)/.exec(detailed.stdout);
    expect(native, detailed.stdout).not.toBeNull();
    expect(native![1]).toBe(`linux/${process.arch === 'x64' ? 'amd64' : process.arch}`);
    expect(/^\s+root\s+(\S+)$/m.exec(native![2]!)?.[1]).toBe(`${daemon.root}/io.containerd.snapshotter.v1.native`);
    expect(detailed.stdout).toMatch(/ID:\s+namespaces\nRequires:\s+io\.containerd\.metadata\.v1\s+io\.containerd\.event\.v1/);
  });

  it('ctr namespaces create, ls, label and rm behave as with containerd', async () => {
    expect((await daemon.ctr(['namespaces', 'create', 'foo', 'a=b'])).code).toBe(0);
    let ls = await daemon.ctr(['namespaces', 'ls']);
    expect(ls.stdout).toMatch(/^NAME\s+LABELS\s*\nfoo\s+a=b\s*$/m);
    expect((await daemon.ctr(['namespaces', 'label', 'foo', 'c=d'])).code).toBe(0);
    ls = await daemon.ctr(['namespaces', 'ls']);
    expect(ls.stdout).toMatch(/foo\s+a=b,c=d/);
    expect((await daemon.ctr(['namespaces', 'label', 'foo', 'a='])).code).toBe(0);
    expect((await daemon.ctr(['namespaces', 'ls'])).stdout).toMatch(/foo\s+c=d\s*$/m);
    const dup = await daemon.ctr(['namespaces', 'create', 'foo']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('already exists');
    const rm = await daemon.ctr(['namespaces', 'rm', 'foo']);
    expect(rm.code).toBe(0);
    expect(rm.stdout.trim()).toBe('foo');
    expect((await daemon.ctr(['namespaces', 'ls', '-q'])).stdout).not.toMatch(/^foo$/m);
    // Removing a missing namespace: the daemon answers NotFound, which ctr ignores: it prints the name, exit 0.
    const missing = await daemon.ctr(['namespaces', 'rm', 'never-was']);
    expect(missing.code).toBe(0);
    expect(missing.stdout.trim()).toBe('never-was');
    const direct = await unaryCall(daemon.address, 'containerd.services.namespaces.v1.Namespaces', 'Delete', { name: 'never-was' });
    expect(direct.error?.code).toBe(5);
    expect(direct.error?.details).toBe('namespace "never-was": not found');
  });

  it('refuses to remove a namespace that still holds content', async () => {
    // Under a lease, so that the garbage collector cannot empty the namespace before we try to remove it.
    expect((await daemon.ctr(['leases', 'create', '--id', 'keep'], { namespace: 'busy' })).code).toBe(0);
    const ingest = await daemon.berth(['--namespace', 'busy', '--lease', 'keep', 'content', 'ingest', 'ref-1'], { input: 'some bytes' });
    expect(ingest.code, ingest.stderr).toBe(0);
    const rm = await daemon.ctr(['namespaces', 'rm', 'busy']);
    expect(rm.stderr).toMatch(/namespace "busy" must be empty.*failed precondition/);
    expect((await daemon.ctr(['namespaces', 'ls', '-q'])).stdout).toMatch(/^busy$/m);
  });

  it('ctr events receives published events with topic and namespace, and filters work', async () => {
    const all = spawnEvents(daemon.address, []);
    const filtered = spawnEvents(daemon.address, ['topic=="/namespaces/update"']);
    await new Promise((r) => setTimeout(r, 500)); // ctr subscribes as it starts
    try {
      expect((await daemon.ctr(['namespaces', 'create', 'evt', 'x=1'], { namespace: 'pubns' })).code).toBe(0);
      expect((await daemon.ctr(['namespaces', 'label', 'evt', 'y=2'], { namespace: 'pubns' })).code).toBe(0);
      const published = await unaryCall(daemon.address, 'containerd.services.events.v1.Events', 'Publish', {
        topic: '/berth/test',
        event: { type_url: 'containerd.events.ContentDelete', value: Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]) },
      }, { 'containerd-namespace': 'other' });
      expect(published.error).toBeUndefined();
      await waitFor(() => all.output().includes('/berth/test'));
      expect(all.output()).toMatch(/pubns\s+\/namespaces\/create\s+\{"name":"evt","labels":\{"x":"1"\}\}/);
      expect(all.output()).toMatch(/pubns\s+\/namespaces\/update/);
      expect(all.output()).toMatch(/other\s+\/berth\/test\s+\{"digest":"abc"\}/);
      await waitFor(() => filtered.output().includes('/namespaces/update'));
      expect(filtered.output()).not.toContain('/namespaces/create');
      expect(filtered.output()).not.toContain('/berth/test');
    } finally {
      all.stop();
      filtered.stop();
    }
  });

  it('takes events forwarded by shims on the ttrpc socket and hands them to ctr events', async () => {
    const events = spawnEvents(daemon.address, ['topic=="/tasks/exit"']);
    await new Promise((r) => setTimeout(r, 500));
    const client = await TtrpcClient.connect(`${daemon.address}.ttrpc`, { metadata: { 'containerd-namespace-ttrpc': 'shimns' } });
    try {
      await client.service(ServiceNames.TtrpcEvents).Forward({
        envelope: {
          timestamp: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
          namespace: 'shimns',
          topic: '/tasks/exit',
          event: packAny('containerd.events.TaskExit', { container_id: 'c1', id: 'c1', pid: 4242, exit_status: 3 }),
        },
      });
      await waitFor(() => events.output().includes('/tasks/exit'));
      expect(events.output()).toMatch(/shimns\s+\/tasks\/exit\s+\{"container_id":"c1","id":"c1","pid":4242,"exit_status":3/);
      await expect(client.service(ServiceNames.TtrpcEvents).Forward({ envelope: null })).rejects.toMatchObject({ code: 3 });
    } finally {
      await client.close();
      events.stop();
    }
  });

  it('answers malformed requests with the right gRPC error and stays up', async () => {
    const noNamespace = await unaryCall(daemon.address, 'containerd.services.events.v1.Events', 'Publish', {
      topic: '/x',
      event: { type_url: 'containerd.events.ContentDelete', value: Buffer.alloc(0) },
    });
    expect(noNamespace.error?.code).toBe(9); // FailedPrecondition, as containerd's NamespaceRequired
    expect(noNamespace.error?.details).toBe('namespace is required: failed precondition');
    const badNamespace = await unaryCall(daemon.address, 'containerd.services.events.v1.Events', 'Publish', {
      topic: '/x',
      event: { type_url: 'containerd.events.ContentDelete', value: Buffer.alloc(0) },
    }, { 'containerd-namespace': 'bad/ns' });
    expect(badNamespace.error?.code).toBe(3);
    const badTopic = await unaryCall(daemon.address, 'containerd.services.events.v1.Events', 'Publish', {
      topic: 'no-slash',
      event: { type_url: 'x', value: Buffer.alloc(0) },
    }, { 'containerd-namespace': 'default' });
    expect(badTopic.error?.code).toBe(3);
    const badName = await daemon.ctr(['namespaces', 'create', 'not valid!']);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toMatch(/identifier "not valid!" must match .*invalid argument/);
    const badFilter = await daemon.ctr(['plugins', 'ls', 'type==']);
    expect(badFilter.code).toBe(1);
    // Garbage bytes on the socket: the connection is dropped, the daemon keeps serving.
    await new Promise<void>((resolve) => {
      const socket = connect(daemon.address, () => {
        socket.write(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\xff\x13garbage'.repeat(50), 'binary'));
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 200);
      });
      socket.on('error', () => resolve());
    });
    expect(daemon.alive).toBe(true);
    expect((await daemon.ctr(['version'])).code).toBe(0);
  });

  it('serves the socket owner-only and grpc.health.v1', async () => {
    expect((await stat(daemon.address)).mode & 0o777).toBe(0o600);
    const health = await unaryCall<{ status: string }>(daemon.address, 'grpc.health.v1.Health', 'Check', { service: '' });
    expect(health.response?.status).toBe('SERVING');
  });

  it('refuses to start a second berthd on the same socket', async () => {
    const second = await run(process.execPath, [DAEMON_MAIN, '--config', daemon.configFile], { timeoutMs: 20_000 });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`another daemon is already serving ${daemon.address}`);
    expect((await daemon.ctr(['version'])).code).toBe(0);
  });
});

describe.skipIf(!hasRoot() || !hasCtr())('berthd composition and configuration', () => {
  const started: Berthd[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((d) => d.stop()));
  });
  const start = async (config: string) => {
    const d = await startBerthd({ config });
    started.push(d);
    return d;
  };

  it('shows a skipped third-party plugin, its skipped dependent, and an API mismatch as error', async () => {
    const d = await start(`plugin_packages = ["${fixture('skipping-plugin.mjs')}", "${fixture('future-plugin.mjs')}"]`);
    const r = await d.ctr(['plugins', 'ls']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/io\.example\.fixture\.v1\s+gadget\s+-\s+skip/);
    expect(r.stdout).toMatch(/io\.example\.fixture\.v1\s+gadget-user\s+-\s+skip/);
    expect(r.stdout).toMatch(/io\.example\.fixture\.v1\s+from-the-future\s+-\s+error/);
    const detailed = await d.ctr(['plugins', 'ls', '-d', 'id==from-the-future']);
    expect(detailed.stdout).toContain(
      'plugin io.example.fixture.v1.from-the-future@3.1.4 requires plugin API ^9.0.0, but this host provides 2.0.0',
    );
    expect(d.logs).toContain('failed to load plugin');
  });

  it('fails to start on a misspelled config key, naming the plugin URI and the key', async () => {
    const err = await start(
      `plugin_packages = ["${fixture('configurable-plugin.mjs')}"]\n[plugins."io.example.fixture.v1.configurable"]\nintervall = 5\n[plugins."io.containerd.gc.v1.scheduler"]\npause_threshold = "high"`,
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/invalid configuration in \/tmp\/berth-it-\w+\/config\.toml:/);
    expect((err as Error).message).toContain('plugins."io.example.fixture.v1.configurable"/intervall: unknown key "intervall"');
    expect((err as Error).message).toContain('plugins."io.containerd.gc.v1.scheduler"/pause_threshold: must be number');
  });

  it('reports a dependency cycle as its path', async () => {
    const err = await start(`plugin_packages = ["${fixture('cycle-plugins.mjs')}"]`).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /plugin dependency cycle: io\.example\.fixture\.v1\.ping → io\.example\.fixture\.v1\.pong → io\.example\.fixture\.v1\.ping/,
    );
  });

  it('makes a required plugin that is skipped fatal', async () => {
    const err = await start(
      `plugin_packages = ["${fixture('skipping-plugin.mjs')}"]\nrequired_plugins = ["io.example.fixture.v1.gadget"]`,
    ).catch((e: Error) => e);
    expect((err as Error).message).toContain('required plugin io.example.fixture.v1.gadget did not load: gadget hardware not present: skip plugin');
  });

  it('serves Prometheus metrics on the configured address and shuts down cleanly on SIGTERM', async () => {
    const port = await freePort();
    const d = await start(`[metrics]\naddress = "127.0.0.1:${port}"`);
    expect((await d.ctr(['version'])).code).toBe(0);
    const res = await fetch(`http://127.0.0.1:${port}/v1/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/grpc_server_handled_total\{grpc_code="OK",grpc_method="Version",grpc_service="containerd\.services\.version\.v1\.Version",grpc_type="unary"\} 1/);
    // Every store reports: the metadata plugin through a contributed collector, the others through their registries.
    expect(text).toMatch(/^berth_metadata_records \d+$/m);
    expect(text).toContain('# TYPE berth_content_commits_total counter');
    expect(text).toContain('# TYPE berth_gc_pause_seconds histogram');
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    const exit = await d.kill('SIGTERM');
    expect(exit.code).toBe(0);
    await expect(stat(d.address)).rejects.toThrow();
    expect(d.logs).toContain('berthd stopped');
  });

  it('prints a default config that validates, and validates files', async () => {
    const def = await run(process.execPath, [DAEMON_MAIN, 'config', 'default']);
    expect(def.code).toBe(0);
    expect(def.stdout).toContain('[plugins."io.containerd.gc.v1.scheduler"]');
    expect(def.stdout).toMatch(/address = "\/run\/berth\/berth\.sock"/);
    const { writeFile, mkdtemp, rm } = await import('node:fs/promises');
    const dir = await mkdtemp('/tmp/berth-cfg-');
    try {
      await writeFile(`${dir}/c.toml`, def.stdout);
      const ok = await run(process.execPath, [DAEMON_MAIN, 'config', 'validate', `${dir}/c.toml`]);
      expect(ok.code, ok.stderr).toBe(0);
      await writeFile(`${dir}/typo.toml`, `${def.stdout}\n[plugins."io.containerd.gc.v1.schedular"]\npause_threshold = 0.1\n`);
      const typo = await run(process.execPath, [DAEMON_MAIN, 'config', 'validate', `${dir}/typo.toml`]);
      expect(typo.code).toBe(0);
      expect(typo.stderr).toMatch(/config section for an unknown plugin is ignored" section=io\.containerd\.gc\.v1\.schedular known=.*io\.containerd\.gc\.v1\.scheduler/);
      await writeFile(`${dir}/bad.toml`, def.stdout.replace('[grpc]', '[grpc]\nadress = "x"'));
      const bad = await run(process.execPath, [DAEMON_MAIN, 'config', 'validate', `${dir}/bad.toml`]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('/grpc/adress: unknown key "adress"');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function spawnEvents(address: string, filters: string[]) {
  const child = spawn('/usr/bin/ctr', ['--address', address, 'events', ...filters], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { output: () => out, stop: () => child.kill('SIGKILL') };
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
