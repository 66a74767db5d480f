// A third-party plugin as docs/plugins.md describes one: plain ESM, @berth/core as a peer dependency, one manifest
// as the default export. It owns a kind of its own (io.example.greeter.v1), takes a config section and tells
// introspection its greeting (`ctr plugins ls -d` shows it under exports).
import { coreTokens, definePlugin } from '@berth/core';

export const greeterPlugin = definePlugin({
  type: 'io.example.greeter.v1',
  id: 'hello',
  version: '1.2.0',
  pluginApi: '^2.0.0',
  description: 'says its configured greeting',
  requires: { log: coreTokens.logger },
  config: {
    schema: {
      $id: 'io.example.greeter.v1.hello',
      type: 'object',
      additionalProperties: false,
      properties: { greeting: { type: 'string', minLength: 1 } },
      required: ['greeting'],
    },
    defaults: { greeting: 'hello' },
  },
  init({ log }, config, ctx) {
    ctx.meta.exports.greeting = config.greeting;
    log.info('greeter ready', { greeting: config.greeting });
    return {};
  },
});

export default greeterPlugin;
