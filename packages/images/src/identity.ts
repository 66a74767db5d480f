// Chain IDs (OCI image-spec's identity.ChainID): the first layer's is its diff ID, each next one
// sha256("<parent chain ID> <diff ID>"). Unpacked layers are committed under these names.
import { sha256Digest } from '@berth/core';

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const parent = out.at(-1);
    out.push(parent === undefined ? diffId : sha256Digest(`${parent} ${diffId}`));
  }
  return out;
}
