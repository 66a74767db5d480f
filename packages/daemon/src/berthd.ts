// berthd: the project's own daemon, made with the composition API like any distribution (docs/custom-runtimes.md).
import { createDaemon } from './command.js';
import { daemonPlugins } from './plugins.js';
import { DAEMON_REVISION, DAEMON_VERSION } from './server.js';

export const berthd = createDaemon({
  name: 'berthd',
  version: DAEMON_VERSION,
  revision: DAEMON_REVISION,
  plugins: daemonPlugins,
});
