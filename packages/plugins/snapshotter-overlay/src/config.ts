import type { JSONSchemaType } from '@berth/core';

/** The section `[plugins."io.containerd.snapshotter.v1.overlayfs"]` of the daemon config (containerd's names). */
export interface OverlayConfig {
  /** Directory of the snapshotter; default: the plugin's root dir, `<root>/io.containerd.snapshotter.v1.overlayfs`. */
  root_path?: string;
  /** Adds the label `containerd.io/snapshot/overlay.upperdir` (the snapshot's `fs` path) to Stat, Update and Walk. */
  upperdir_label?: boolean;
  /**
   * Extra overlay mount options, put before `workdir`/`upperdir`/`lowerdir` of every overlay mount (containerd 1.7's
   * `mount_options`). The probe at init mounts with them too, so options this kernel refuses skip the plugin.
   */
  mount_options?: string[];
  /**
   * Makes the probe at init fail as on a kernel without overlayfs: it mounts a filesystem type no kernel has
   * (mount(2) fails with ENODEV), so the plugin is skipped with that reason. For tests of hosts without overlayfs
   * (`ctr plugins ls` shows it as `skip`, another snapshotter serves); berth's own name, containerd has none.
   */
  simulate_unavailable?: boolean;
}

export const overlayConfigSchema: JSONSchemaType<OverlayConfig> = {
  $id: 'io.containerd.snapshotter.v1.overlayfs',
  type: 'object',
  properties: {
    root_path: { type: 'string', nullable: true, minLength: 1 },
    upperdir_label: { type: 'boolean', nullable: true },
    // No commas or NULs: each item is one option of the comma-joined data string.
    mount_options: { type: 'array', nullable: true, items: { type: 'string', minLength: 1, pattern: '^[^,\\u0000]+$' } },
    simulate_unavailable: { type: 'boolean', nullable: true },
  },
  required: [],
  additionalProperties: false,
};

export const overlayConfigDefaults: OverlayConfig = {};
