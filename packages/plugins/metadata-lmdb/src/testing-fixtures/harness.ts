/** Test harness: a real LMDB metadata store over a real file-backed raw content store, in a temp dir. */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nullLogger, type ContentStore, type OpContext } from '@berth/core';
import { LmdbMetadataStore, type LmdbMetadataStoreOptions } from '../metadata-store.js';
import { FsContentStore } from './fs-content-store.js';

export const sha256 = (data: Uint8Array | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A raw content store with its directory (both backends keep blobs at `<root>/blobs/sha256/<hex>`). */
export type RawStore = ContentStore & { readonly root: string; close?(): Promise<void> };

export type Backend = 'local' | 'fs';

/**
 * The raw store of the tests: `local` is the real content-local plugin's store, loaded from its sources at run time
 * (plugins never import each other; a path import keeps the type checker out of that package), `fs` the small
 * fixture in this folder.
 */
export async function openRawStore(backend: Backend, root: string): Promise<RawStore> {
  if (backend === 'fs') return new FsContentStore(root);
  const path = new URL('../../../content-local/src/local-content-store.ts', import.meta.url).href;
  const mod = (await import(/* @vite-ignore */ path)) as {
    LocalContentStore: { open(options: { root: string }): Promise<RawStore> };
  };
  return mod.LocalContentStore.open({ root });
}

export interface Harness {
  readonly dir: string;
  readonly raw: RawStore;
  store: LmdbMetadataStore;
  /** Closes and reopens the metadata store on the same files. */
  reopen(options?: Partial<LmdbMetadataStoreOptions>): Promise<LmdbMetadataStore>;
  cleanup(): Promise<void>;
}

export async function createHarness(
  options: Partial<LmdbMetadataStoreOptions> & { wrapRaw?: (raw: RawStore) => ContentStore; backend?: Backend } = {},
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-metadata-lmdb-'));
  const raw = await openRawStore(options.backend ?? 'local', join(dir, 'content'));
  const backend = options.wrapRaw ? options.wrapRaw(raw) : raw;
  const path = join(dir, 'meta', 'meta.lmdb');
  const { wrapRaw: _wrap, backend: _backend, ...storeOptions } = options;
  const open = (extra: Partial<LmdbMetadataStoreOptions> = {}) =>
    LmdbMetadataStore.open({ path, content: backend, log: nullLogger, ...storeOptions, ...extra });
  const harness: Harness = {
    dir,
    raw,
    store: await open(),
    async reopen(extra) {
      await harness.store.close();
      harness.store = await open(extra);
      return harness.store;
    },
    async cleanup() {
      await harness.store.close();
      await raw.close?.();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Writes and commits a blob through a content store, returning its digest. */
export async function putBlob(
  store: ContentStore,
  ctx: OpContext,
  data: Uint8Array | string,
  options: { ref?: string; labels?: Record<string, string>; expected?: boolean } = {},
): Promise<string> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const digest = sha256(bytes);
  const w = await store.writer(ctx, {
    ref: options.ref ?? `ref-${digest.slice(7, 19)}`,
    total: bytes.length,
    ...(options.expected === false ? {} : { expected: digest }),
  });
  const status = await w.status();
  if (status.offset !== bytes.length) await w.write(bytes);
  await w.commit(bytes.length, digest, options.labels ? { labels: options.labels } : undefined);
  return digest;
}

export const ctxOf = (namespace: string, lease?: string): OpContext => (lease ? { namespace, lease } : { namespace });
