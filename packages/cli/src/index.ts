export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
export { createProgram, runCli } from './cli.js';
export { CliContext, resolveGlobalOptions, type CliIo, type GlobalOptions } from './context.js';
export { cliPlugins } from './plugins.js';
