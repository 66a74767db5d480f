import type { JSONSchemaType } from '@berth/core';

/** The section `[plugins."io.containerd.snapshotter.v1.native"]` of the daemon config (containerd's native Config). */
export interface NativeSnapshotterConfig {
  /** Directory of the snapshotter; default: the plugin's root dir, `<root>/io.containerd.snapshotter.v1.native`. */
  root_path?: string;
}

export const nativeSnapshotterConfigSchema: JSONSchemaType<NativeSnapshotterConfig> = {
  $id: 'io.containerd.snapshotter.v1.native',
  type: 'object',
  properties: {
    root_path: { type: 'string', nullable: true, minLength: 1 },
  },
  required: [],
  additionalProperties: false,
};

export const nativeSnapshotterConfigDefaults: NativeSnapshotterConfig = {};
