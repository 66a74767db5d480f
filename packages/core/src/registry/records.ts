import type { Platform } from './manifest.js';

export type PluginStatus = 'ok' | 'skip' | 'error' | 'disabled' | 'pending';

/** What introspection reports about one plugin of a composition. */
export interface PluginRecord {
  readonly uri: string;
  readonly type: string;
  readonly id: string;
  readonly version: string;
  readonly status: PluginStatus;
  /** Types of the plugins it requires (containerd's `requires`). */
  readonly requires: readonly string[];
  /** Ids of the tokens it provides. */
  readonly provides: readonly string[];
  /** Ids of the contribution points it contributes to. */
  readonly contributes: readonly string[];
  readonly platforms: readonly Platform[];
  readonly exports: Readonly<Record<string, string>>;
  readonly capabilities: readonly string[];
  /** Why it is skip/error. */
  readonly error?: { readonly message: string; readonly code?: string };
  /** Where a third-party plugin came from (package name or path). */
  readonly source?: string;
}

/** A live view of the composition's plugins, provided by the host under `coreTokens.plugins`. */
export interface PluginRegistryView {
  list(): readonly PluginRecord[];
}
