/** Test harness: a real LMDB metadata store over a raw content store (the real content-local one, or core's in-memory one), in a temp dir. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { nullLogger, type ContentStore, type OpContext, type RawContentStore } from '@berth/core';
import { createMemoryContentStore } from '@berth/core/testing';
import { LocalContentStore } from '@berth/plugin-content-local';
import { LmdbMetadataStore, type LmdbMetadataStoreOptions } from '../metadata-store.js';

export { sha256 } from '@berth/core/testing';
import { sha256 } from '@berth/core/testing';

/** A raw content store, with its directory when it has one (`<root>/blobs/sha256/<hex>`). */
export type RawStore = RawContentStore & { readonly root?: string; close?(): Promise<void> };

export type Backend = 'local' | 'memory';

/**
 * The raw store of the tests: `local` is the real content-local plugin's store (a test-only dependency: the plugins
 * never import each other), `memory` core's in-memory store.
 */
export async function openRawStore(backend: Backend, root: string): Promise<RawStore> {
  if (backend === 'memory') return createMemoryContentStore('raw');
  return LocalContentStore.open({ root });
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
  options: Partial<LmdbMetadataStoreOptions> & { wrapRaw?: (raw: RawStore) => RawContentStore; backend?: Backend } = {},
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

/** Gives each test of the enclosing describe a fresh default harness (`use`), cleaned up after it, also when it fails. */
export function useHarness(use: (harness: Harness) => void): void {
  let current: Harness | undefined;
  beforeEach(async () => {
    current = await createHarness();
    use(current);
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
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
