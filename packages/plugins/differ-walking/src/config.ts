import type { JSONSchemaType } from '@berth/core';

export interface DifferWalkingConfig {
  /** Worker threads that apply layers and write diffs (jobs beyond that wait); 0: the CPU count, at least 2. */
  readonly workers: number;
  /** Seconds a worker may sit idle before it stops (an idle daemon holds no workers). */
  readonly worker_idle_seconds: number;
  /** gzip decompressor: `auto` (igzip, else pigz, else zlib), or one of them by name. */
  readonly gzip_decompressor: 'auto' | 'igzip' | 'pigz' | 'zlib';
  /** Character and block devices in layers: create them (as containerd), skip them, or refuse the layer. */
  readonly devices: 'create' | 'skip' | 'refuse';
  /** zlib level of the gzip layers Diff writes (containerd: gzip's default, 6). */
  readonly compression_level: number;
}

export const differWalkingConfigDefaults: DifferWalkingConfig = {
  workers: 0,
  worker_idle_seconds: 30,
  gzip_decompressor: 'auto',
  devices: 'create',
  compression_level: 6,
};

export const differWalkingConfigSchema: JSONSchemaType<DifferWalkingConfig> = {
  $id: 'io.containerd.differ.v1.walking',
  type: 'object',
  additionalProperties: false,
  properties: {
    workers: { type: 'integer', minimum: 0, maximum: 64 },
    worker_idle_seconds: { type: 'number', minimum: 0 },
    gzip_decompressor: { type: 'string', enum: ['auto', 'igzip', 'pigz', 'zlib'] },
    devices: { type: 'string', enum: ['create', 'skip', 'refuse'] },
    compression_level: { type: 'integer', minimum: 1, maximum: 9 },
  },
  required: ['workers', 'worker_idle_seconds', 'gzip_decompressor', 'devices', 'compression_level'],
};
