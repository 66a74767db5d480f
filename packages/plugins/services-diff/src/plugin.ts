import { coreTokens, createToken, definePlugin } from '@berth/core';
import { servicesDiffConfigDefaults, servicesDiffConfigSchema, type ServicesDiffConfig } from './config.js';
import { ServicesDiff } from './services-diff.js';
import { PACKAGE_VERSION } from './version.js';

/** What this plugin provides (a kind shared with other plugins gets its token in @berth/core instead). */
export const servicesDiffToken = createToken<ServicesDiff>('containerd.grpc');

export const servicesDiffPlugin = definePlugin({
  type: 'io.containerd.grpc.v1',
  id: 'diff',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: servicesDiffToken,
  requires: { log: coreTokens.logger },
  config: { schema: servicesDiffConfigSchema, defaults: servicesDiffConfigDefaults },
  init: ({ log }, config: ServicesDiffConfig) => new ServicesDiff(config, log),
});
export default servicesDiffPlugin;
