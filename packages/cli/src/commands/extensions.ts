// `berth extensions …`: the JSON Schemas of container extensions (`schema add|ls|get|rm`) and one extension of one
// container at a time (`get|set|patch|rm CONTAINER TYPEURL`, with `--revision N` for optimistic concurrency;
// writes print the new revision), and `watch`, over berthd's berth.services.extensions.v1 services.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ExtensionSchemasProxy, ExtensionsProxy } from '@berth/client';
import { isCancelled } from '@berth/core';
import type { CliContext } from '../context.js';
import { jsonBytes, readJsonArgument } from './containers-ops.js';
import { jsonSource } from './containers.js';
import {
  extensionJson,
  formatExtensionValue,
  formatUpdate,
  parseIndexedPath,
  parseRevision,
  parseSchemaDocument,
  schemaJson,
  schemaRows,
  updateJson,
} from './extensions-ops.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const revisionOf = (opts: { revision?: string }) => (opts.revision !== undefined ? { expectedRevision: parseRevision(opts.revision) } : {});

export function registerExtensions(program: Command, ctx: CliContext): void {
  const group = program
    .command('extensions')
    .aliases(['extension', 'ext'])
    .description('JSON extensions of containers: their schemas, and reads and writes with revisions');

  const schema = group.command('schema').alias('schemas').description('the JSON Schemas (draft 2020-12) extensions are validated against, by type URL');

  schema
    .command('add')
    .description('register the schema in FILE (- for stdin) for a type URL, or replace it with a compatible version; prints its version')
    .argument('<name>', 'the type URL, e.g. acme.io/ownership')
    .argument('<file>', 'the JSON Schema document (- for stdin)')
    .option('--index <path>', 'a JSON path to index for queries, e.g. team (repeatable)', collect, [])
    .option('--force', 'replace even when stored values would no longer validate')
    .action(async (name: string, file: string, opts: { index: string[]; force?: boolean }) => {
      const raw = file === '-' ? await jsonSource(ctx).readStdin() : await readFile(file, 'utf8');
      const doc = parseSchemaDocument(raw, file);
      const s = await new ExtensionSchemasProxy(ctx.berth()).register({ name, schema: doc, indexedPaths: opts.index.map(parseIndexedPath) }, { force: opts.force === true });
      if (ctx.json) ctx.printJson(schemaJson(s, { document: false }));
      else ctx.line(String(s.version));
    });

  schema
    .command('ls')
    .alias('list')
    .description('list the registered schemas')
    .option('-q, --quiet', 'print only the names')
    .action(async (opts: { quiet?: boolean }) => {
      const list = await new ExtensionSchemasProxy(ctx.berth()).list();
      if (ctx.json) return ctx.printJson(list.map((s) => schemaJson(s)));
      if (opts.quiet) {
        for (const s of list) ctx.line(s.name);
        return;
      }
      ctx.table(schemaRows(list));
    });

  schema
    .command('get')
    .description('print a schema (the document; with --format json, its record too)')
    .argument('<name>')
    .action(async (name: string) => {
      const s = await new ExtensionSchemasProxy(ctx.berth()).get(name);
      ctx.printJson(ctx.json ? schemaJson(s) : s.schema);
    });

  schema
    .command('rm')
    .aliases(['remove', 'delete', 'del'])
    .description('remove schemas registered through the API; prints each removed')
    .argument('<names...>')
    .action(async (names: string[]) => {
      const proxy = new ExtensionSchemasProxy(ctx.berth());
      const removed: string[] = [];
      for (const name of names) {
        await proxy.delete(name);
        removed.push(name);
      }
      if (ctx.json) ctx.printJson(removed);
      else for (const n of removed) ctx.line(n);
    });

  group
    .command('get')
    .description('print the value of one extension of a container (with --format json: its revision too)')
    .argument('<container>')
    .argument('<typeurl>')
    .action(async (container: string, name: string) => {
      const e = await new ExtensionsProxy(ctx.berth()).get(ctx.op, container, name);
      if (ctx.json) ctx.printJson(extensionJson(e));
      else ctx.write(formatExtensionValue(e));
    });

  group
    .command('set')
    .description('create or replace one extension of a container with a JSON value; prints the new revision')
    .argument('<container>')
    .argument('<typeurl>')
    .argument('[value]', 'JSON text, @FILE, or - for stdin (the default)', '-')
    .option('--revision <n>', 'apply only if the current revision is n (0: only if absent)')
    .action(async (container: string, name: string, valueArg: string, opts: { revision?: string }) => {
      const { value } = await readJsonArgument(valueArg, jsonSource(ctx), `extension ${name}`);
      const e = await new ExtensionsProxy(ctx.berth()).set(ctx.op, container, name, { typeUrl: name, value: jsonBytes(value) }, revisionOf(opts));
      if (ctx.json) ctx.printJson(extensionJson(e));
      else ctx.line(String(e.revision));
    });

  group
    .command('patch')
    .description('apply a JSON Merge Patch (RFC 7396) to one extension of a container; prints the new revision')
    .argument('<container>')
    .argument('<typeurl>')
    .argument('[patch]', 'JSON text, @FILE, or - for stdin (the default)', '-')
    .option('--revision <n>', 'apply only if the current revision is n')
    .action(async (container: string, name: string, patchArg: string, opts: { revision?: string }) => {
      const { text } = await readJsonArgument(patchArg, jsonSource(ctx), `patch of ${name}`);
      const e = await new ExtensionsProxy(ctx.berth()).patch(ctx.op, container, name, text, revisionOf(opts));
      if (ctx.json) ctx.printJson(extensionJson(e));
      else ctx.line(String(e.revision));
    });

  group
    .command('rm')
    .aliases(['remove', 'delete', 'del'])
    .description('delete one extension of a container; prints the revision of the value deleted')
    .argument('<container>')
    .argument('<typeurl>')
    .option('--revision <n>', 'delete only if the current revision is n')
    .action(async (container: string, name: string, opts: { revision?: string }) => {
      const revision = await new ExtensionsProxy(ctx.berth()).delete(ctx.op, container, name, revisionOf(opts));
      if (ctx.json) ctx.printJson({ container, name, revision });
      else ctx.line(String(revision));
    });

  group
    .command('watch')
    .description('print every committed change of extensions in the namespace until interrupted: CONTAINER TYPEURL REVISION [deleted]')
    .option('--container <id>', 'only changes of this container (repeatable)', collect, [])
    .option('--name <typeurl>', 'only changes of this extension (repeatable)', collect, [])
    .action(async (opts: { container: string[]; name: string[] }) => {
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const updates = new ExtensionsProxy(ctx.berth()).watch({ ...ctx.op, signal: controller.signal }, { containerIds: opts.container, names: opts.name });
        for await (const u of updates) ctx.line(ctx.json ? JSON.stringify(updateJson(u)) : formatUpdate(u));
      } catch (err) {
        if (!(controller.signal.aborted && isCancelled(err))) throw err;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
