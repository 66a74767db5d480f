import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { PACKAGE_VERSION } from '../version.js';

export function registerVersion(program: Command, ctx: CliContext): void {
  program
    .command('version')
    .description('print the client and server versions')
    .action(async () => {
      const client = ctx.berth();
      const [version, server] = await Promise.all([client.version.Version({}), client.introspection.Server({})]);
      if (ctx.json) {
        ctx.printJson({ client: { version: PACKAGE_VERSION }, server: { version: version.version, revision: version.revision, uuid: server.uuid } });
        return;
      }
      ctx.line('Client:');
      ctx.line(`  Version:  ${PACKAGE_VERSION}`);
      ctx.line();
      ctx.line('Server:');
      ctx.line(`  Version:  ${version.version}`);
      ctx.line(`  Revision: ${version.revision}`);
      ctx.line(`  UUID:     ${server.uuid}`);
    });
}
