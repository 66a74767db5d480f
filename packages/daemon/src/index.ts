export { Daemon, DAEMON_REVISION, DAEMON_VERSION, type DaemonOptions } from './server.js';
export { daemonPlugins } from './plugins.js';
export { ERRDEF_TO_STATUS, toWireStatus } from './grpc/errgrpc.js';
