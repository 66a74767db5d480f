// Unpacking an image's layers into a snapshotter as containerd's unpacker does (chain IDs as committed names,
// `extract-<unique> <chainID>` active keys labelled containerd.io/snapshot.ref, the diff ID checked against the
// config before a commit, the uncompressed label on each layer, gc.ref.snapshot.<snapshotter> on the config), with
// one difference: a layer is applied as soon as its own bytes are in the content store, while the layers after it
// still download, instead of after the whole image has been fetched.
import {
  DataLossError,
  GC_REF_SNAPSHOT,
  InvalidArgumentError,
  isAlreadyExists,
  isNotFound,
  SNAPSHOT_REF_LABEL,
  UNCOMPRESSED_LABEL,
  type Applier,
  type ContentStore,
  type Descriptor,
  type OpContext,
  type Snapshotter,
} from '@berth/core';
import { chainIds } from './identity.js';
import type { ImageConfig } from './manifests.js';
import type { LayerState } from './types.js';

/** Annotations of a layer with this prefix become labels of its snapshot (containerd's FilterInheritedLabels). */
const INHERITED_LABEL_PREFIX = 'containerd.io/snapshot/';

/** A layer of the manifest and the promise of its bytes being committed to the content store. */
export interface LayerSource {
  readonly descriptor: Descriptor;
  readonly fetched: Promise<void>;
}

export interface UnpackTarget {
  readonly content: ContentStore;
  readonly snapshotter: Snapshotter;
  readonly snapshotterName: string;
  readonly applier: Applier;
  readonly ctx: OpContext;
  /** A random part for the active snapshots' keys (`extract-<unique> <chainID>`). */
  readonly unique: () => string;
  readonly onProgress?: (layer: Descriptor, state: LayerState) => void;
}

async function exists(sn: Snapshotter, ctx: OpContext, key: string): Promise<boolean> {
  try {
    await sn.stat(ctx, key);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/**
 * Unpacks `layers` in chain order, each once its download has finished; returns the top chain ID. A snapshot whose
 * chain ID is there already is kept (and its layer not applied again).
 */
export async function unpackLayers(t: UnpackTarget, config: Descriptor, image: ImageConfig, layers: readonly LayerSource[]): Promise<string> {
  const { ctx, snapshotter: sn } = t;
  if (layers.length !== image.diffIds.length) {
    throw new InvalidArgumentError(`number of layers and diffIDs don't match: ${layers.length} != ${image.diffIds.length}`);
  }
  const chain = chainIds(image.diffIds);
  for (const [i, layer] of layers.entries()) {
    const chainId = chain[i]!;
    const parent = i > 0 ? chain[i - 1]! : '';
    await layer.fetched;
    if (await exists(sn, ctx, chainId)) continue;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(layer.descriptor.annotations ?? {})) if (k.startsWith(INHERITED_LABEL_PREFIX)) labels[k] = v;
    labels[SNAPSHOT_REF_LABEL] = chainId;
    let key = '';
    let mounts;
    for (let attempt = 1; ; attempt++) {
      key = `extract-${t.unique()} ${chainId}`;
      try {
        mounts = await sn.prepare(ctx, key, parent, { labels });
        break;
      } catch (err) {
        if (!isAlreadyExists(err) || attempt >= 3) throw err;
      }
    }
    if (mounts === undefined) continue;
    t.onProgress?.(layer.descriptor, 'unpacking');
    let committed = false;
    try {
      const diff = await t.applier.apply(ctx, layer.descriptor, mounts);
      if (diff.digest !== image.diffIds[i]) {
        throw new DataLossError(`wrong diff id calculated on extraction of layer ${layer.descriptor.digest}: ${diff.digest}, the config says ${image.diffIds[i]}`);
      }
      try {
        await sn.commit(ctx, chainId, key, { labels });
        committed = true;
      } catch (err) {
        // committed by someone else meanwhile: theirs is as good
        if (!isAlreadyExists(err)) throw err;
      }
      await setLabel(t.content, ctx, layer.descriptor.digest, UNCOMPRESSED_LABEL, diff.digest);
      t.onProgress?.(layer.descriptor, 'done');
    } finally {
      // without the signal: an aborted pull still removes what it prepared
      if (!committed) await sn.remove({ namespace: ctx.namespace, ...(ctx.lease ? { lease: ctx.lease } : {}) }, key).catch(() => undefined);
    }
  }
  const top = chain.at(-1) ?? '';
  if (top !== '') await setLabel(t.content, ctx, config.digest, `${GC_REF_SNAPSHOT}${t.snapshotterName}`, top);
  return top;
}

async function setLabel(content: ContentStore, ctx: OpContext, digest: string, key: string, value: string): Promise<void> {
  await content.update(ctx, { digest, labels: { [key]: value } }, [`labels.${key}`]);
}
