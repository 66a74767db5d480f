// Debian's docker-registry on a loopback port (started and stopped by PID, data under a temp dir) and a push of an
// OCI layout's single entry through the distribution API, for the pull benchmarks.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts docker-registry with its storage in a temp dir under `parent`; `stop()` ends it and removes the dir. */
export async function startRegistry(parent) {
  const dir = mkdtempSync(join(parent, 'berth-bench-registry-'));
  const port = await freePort();
  const yml = ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`,
    'http:', `  addr: 127.0.0.1:${port}`, `  secret: ${randomBytes(16).toString('hex')}`, ''].join('\n');
  writeFileSync(join(dir, 'config.yml'), yml);
  const child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/v2/`)).ok) break;
      } catch {
        // not up yet
      }
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`);
      if (i > 150) throw new Error('docker-registry did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { host: `127.0.0.1:${port}`, url, pid: child.pid, stop };
}

/** Pushes an OCI layout's single entry (blobs, then manifests, the tag last) with the distribution API. */
export async function pushLayout(registry, layoutDir, name, tag) {
  const blob = (d) => readFileSync(join(layoutDir, 'blobs', 'sha256', d.slice(7)));
  const putBlob = async (digest) => {
    const start = await fetch(`${registry.url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
    const location = new URL(start.headers.get('location'), registry.url);
    location.searchParams.set('digest', digest);
    const res = await fetch(location, { method: 'PUT', body: blob(digest), headers: { 'content-type': 'application/octet-stream' } });
    if (res.status !== 201) throw new Error(`push ${digest}: ${res.status}`);
  };
  const putManifest = async (ref, desc) => {
    const res = await fetch(`${registry.url}/v2/${name}/manifests/${ref}`, { method: 'PUT', body: blob(desc.digest), headers: { 'content-type': desc.mediaType } });
    if (res.status !== 201) throw new Error(`push manifest ${desc.digest}: ${res.status} ${await res.text()}`);
  };
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8'));
  const entry = index.manifests[0];
  const pushManifestTree = async (desc) => {
    const doc = JSON.parse(blob(desc.digest).toString('utf8'));
    if (doc.manifests) for (const m of doc.manifests) await pushManifestTree(m);
    else for (const d of [doc.config, ...doc.layers]) await putBlob(d.digest);
    await putManifest(desc.digest, desc);
  };
  await pushManifestTree(entry);
  await putManifest(tag, entry);
  return `${registry.host}/${name}:${tag}`;
}
