import type { JSONSchemaType } from '@berth/core';

/** `[plugins."io.containerd.metadata.v1.lmdb"]` */
export interface MetadataLmdbConfig {
  /** containerd's `content_sharing_policy`: `shared` links a blob another namespace has by digest; `isolated` makes every namespace upload it. */
  content_sharing_policy: 'shared' | 'isolated';
  /** Seconds an ingest started without a lease survives garbage collection (containerd: 24h). */
  ingest_expiry_seconds: number;
  /** Initial LMDB map size in bytes; 0 lets lmdb start small and grow the map as needed. */
  map_size: number;
  /** Maximum concurrent LMDB read transactions. */
  max_readers: number;
}

export const metadataLmdbConfigDefaults: MetadataLmdbConfig = {
  content_sharing_policy: 'shared',
  ingest_expiry_seconds: 86_400,
  map_size: 0,
  max_readers: 126,
};

export const metadataLmdbConfigSchema: JSONSchemaType<MetadataLmdbConfig> = {
  $id: 'io.containerd.metadata.v1.lmdb',
  type: 'object',
  additionalProperties: false,
  properties: {
    content_sharing_policy: { type: 'string', enum: ['shared', 'isolated'], default: 'shared' },
    ingest_expiry_seconds: { type: 'integer', minimum: 1, default: 86_400 },
    map_size: { type: 'integer', minimum: 0, default: 0 },
    max_readers: { type: 'integer', minimum: 1, maximum: 65_535, default: 126 },
  },
  required: [],
};
