// The CLI's composition of client-side plugins (STYLE §3, §7): the daemon composes every plugin eagerly, the CLI
// would initialise only the closure a command needs. No command needs one yet: they all talk to berthd through
// BerthClient directly, so the list is empty and nothing heavy is imported here.
import type { AnyPluginManifest } from '@berth/core';

export const cliPlugins: readonly AnyPluginManifest[] = [];
