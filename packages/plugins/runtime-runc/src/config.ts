import type { JSONSchemaType } from '@berth/core';

/** `[plugins."io.containerd.runtime.v2.task"]` */
export interface RuntimeRuncConfig {
  /**
   * The runc root (`--root`) given to runc shims whose options leave it unset; empty: `<berthd state>/runc`.
   * containerd's default is /run/containerd/runc: berthd never shares it, so it never touches a containerd's state.
   */
  runc_root: string;
  /** Start shims with `-debug` (their debug lines reach berthd's log through the bundle's log FIFO). */
  shim_debug: boolean;
  /** Deadline of reconnecting to a shim found at startup (containerd: 5 s). */
  load_timeout_ms: number;
  /** Deadline of cleaning up after a shim that died (the `delete` subcommand; containerd: 5 s). */
  cleanup_timeout_ms: number;
  /** Deadline of a shim's Shutdown (containerd: 3 s). */
  shutdown_timeout_ms: number;
  /** Deadline of every other shim call except Wait, and of `start` (containerd has none: a stuck shim hangs it). */
  call_timeout_ms: number;
}

export const runtimeRuncConfigDefaults: RuntimeRuncConfig = {
  runc_root: '',
  shim_debug: false,
  load_timeout_ms: 5000,
  cleanup_timeout_ms: 5000,
  shutdown_timeout_ms: 3000,
  call_timeout_ms: 60_000,
};

export const runtimeRuncConfigSchema: JSONSchemaType<RuntimeRuncConfig> = {
  $id: 'io.containerd.runtime.v2.task',
  type: 'object',
  additionalProperties: false,
  properties: {
    runc_root: { type: 'string', default: '' },
    shim_debug: { type: 'boolean', default: false },
    load_timeout_ms: { type: 'integer', minimum: 1, default: 5000 },
    cleanup_timeout_ms: { type: 'integer', minimum: 1, default: 5000 },
    shutdown_timeout_ms: { type: 'integer', minimum: 1, default: 3000 },
    call_timeout_ms: { type: 'integer', minimum: 1, default: 60_000 },
  },
  required: [],
};
