export { Daemon, DAEMON_REVISION, DAEMON_VERSION, type DaemonOptions } from './server.js';
export { daemonPlugins } from './plugins.js';
export { toWireStatus } from './grpc/errgrpc.js';
