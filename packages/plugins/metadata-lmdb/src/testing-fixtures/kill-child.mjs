// Child process for the SIGKILL durability test: loads the TypeScript sources through vite (as vitest does),
// commits some metadata, reports it on stdout and then waits to be killed.
import 'reflect-metadata'; // core imports tsyringe
import { createServer } from 'vite';

const [, , metaPath, contentRoot] = process.argv;
const pkg = new URL('../../', import.meta.url).pathname;
const server = await createServer({
  configFile: `${pkg}vitest.config.ts`,
  root: pkg,
  logLevel: 'silent',
  server: { middlewareMode: true, hmr: false, watch: null },
  optimizeDeps: { noDiscovery: true, include: [] },
});
const { LmdbMetadataStore } = await server.ssrLoadModule(`${pkg}src/metadata-store.ts`);
const { LocalContentStore } = await server.ssrLoadModule('@berth/plugin-content-local');
const { nullLogger } = await server.ssrLoadModule('@berth/core');
const store = await LmdbMetadataStore.open({ path: metaPath, content: await LocalContentStore.open({ root: contentRoot }), log: nullLogger });
const ctx = { namespace: 'killed' };
await store.namespaces.create('survivor', { k: 'v' });
await store.leases.create(ctx, { id: 'lease-1' });
const w = await store.content.writer(ctx, { ref: 'blob' });
await w.write(Buffer.from('durable bytes'));
const { createHash } = await import('node:crypto');
const digest = `sha256:${createHash('sha256').update('durable bytes').digest('hex')}`;
await w.commit(13, digest, { labels: { a: 'b' } });
process.stdout.write(`committed ${digest}\n`);
setInterval(() => {}, 1000);
