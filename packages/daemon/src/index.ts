export { Daemon, DAEMON_REVISION, DAEMON_VERSION, type DaemonOptions } from './server.js';
export { createDaemon, DEFAULT_CONFIG_FILE, pluginPackagesSource, type CreateDaemonOptions, type DaemonProgram, type PluginSource } from './command.js';
export { applyHeapFlags } from './heap.js';
export { daemonPlugins } from './plugins.js';
export { toWireStatus } from './grpc/errgrpc.js';
