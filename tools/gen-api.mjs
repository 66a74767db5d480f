#!/usr/bin/env node
// Writes packages/api/src/generated/types.ts and descriptor.ts from the .proto files in packages/api/proto.
//   node tools/gen-api.mjs           regenerate (prints nothing when unchanged)
//   node tools/gen-api.mjs --check   exit 1 when a committed file is missing or stale
//   add --file <path> to write or check another types file instead (descriptor.ts goes beside it)
//
// descriptor.ts holds the protos as protobufjs's JSON descriptor, in one string: berth loads it at start instead of
// parsing .proto text (about 15 ms against 70 here), so no .proto file is read by a running berthd or berth.
//
// Naming scheme: every proto package becomes a TypeScript namespace of the same dotted name, so each message keeps
// its full proto name (containerd.services.content.v1.Info); nested messages and enums live in a namespace merged
// with their parent (containerd.services.containers.v1.Container.Runtime). Beside each message `Foo` (the decoded
// shape) comes `FooInput` (what encode accepts: every field optional, nullable, wider types). Each service `Svc`
// adds `SvcHandlers` (server side) and `SvcClient` (caller side) to its package namespace. Top-level maps tie names to
// types: `Messages` / `MessageInputs` (by full message name) and `Services` (by full service name).
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const apiDir = join(repo, 'packages', 'api');
const protoDir = join(apiDir, 'proto');
const fileArg = process.argv.indexOf('--file');
// --file <path> writes or checks another file (used by the api package's tests).
const outFile = fileArg > 0 && process.argv[fileArg + 1] ? process.argv[fileArg + 1] : join(apiDir, 'src', 'generated', 'types.ts');
const protobuf = createRequire(join(apiDir, 'package.json'))('protobufjs');

// Keep this list and the loading rules in step with packages/api/src/proto-root.ts.
const EXTRA_WELL_KNOWN = [
  'google/protobuf/any.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/empty.proto',
  'google/protobuf/field_mask.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/timestamp.proto',
];

function loadRoot() {
  const files = readdirSync(protoDir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => join(protoDir, f));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(protoDir, target));
  root.loadSync([...files, ...EXTRA_WELL_KNOWN], { keepCase: true });
  root.resolveAll();
  return root;
}

const NUMBER_TYPES = new Set([
  'double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32',
  'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64',
]);
const RESERVED_TS = new Set(['break', 'case', 'class', 'const', 'default', 'delete', 'enum', 'export', 'function', 'import', 'in', 'new', 'return', 'switch', 'this', 'typeof', 'var', 'void', 'with']);

const strip = (name) => (name.startsWith('.') ? name.slice(1) : name);
const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const quoteKey = (k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k));

/** Fails when the first segment of a qualified reference would be shadowed inside the namespace it is used in. */
function checkReference(root, fromFullName, refFullName) {
  const head = strip(refFullName).split('.')[0];
  const parts = strip(fromFullName).split('.');
  for (let i = parts.length; i > 0; i--) {
    const scope = root.lookup('.' + parts.slice(0, i).join('.'));
    if (scope && scope.nested && Object.hasOwn(scope.nested, head)) {
      throw new Error(`reference ${strip(refFullName)} from ${strip(fromFullName)} would be shadowed by ${parts.slice(0, i).join('.')}.${head}`);
    }
  }
}

function scalarType(type, input) {
  if (NUMBER_TYPES.has(type)) return 'number';
  if (type === 'bool') return 'boolean';
  if (type === 'string') return 'string';
  if (type === 'bytes') return input ? 'Uint8Array' : 'Buffer';
  throw new Error(`unsupported scalar type ${type}`);
}

function refType(root, from, resolved, input) {
  checkReference(root, from.fullName, resolved.fullName);
  return strip(resolved.fullName) + (input ? 'Input' : '');
}

function valueType(root, from, field, input) {
  const resolved = field.resolvedType;
  if (!resolved) return scalarType(field.type, input);
  if (resolved instanceof protobuf.Enum) return refType(root, from, resolved, input);
  return refType(root, from, resolved, input);
}

function fieldLines(root, type, input) {
  const lines = [];
  for (const field of type.fieldsArray) {
    field.resolve();
    const name = quoteKey(field.name);
    let t;
    if (field.map) {
      t = input
        ? `Readonly<Record<string, ${valueType(root, type, field, true)}>>`
        : `Record<string, ${valueType(root, type, field, false)}>`;
    } else if (field.repeated) {
      t = input ? `readonly ${valueType(root, type, field, true)}[]` : `${valueType(root, type, field, false)}[]`;
    } else {
      t = valueType(root, type, field, input);
      if (!input && field.resolvedType instanceof protobuf.Type) t += ' | null';
    }
    const optional = input || field.partOf != null;
    lines.push(`${name}${optional ? '?' : ''}: ${t}${input ? ' | null' : ''};`);
  }
  for (const oneof of type.oneofsArray) {
    const union = oneof.fieldsArray.map((f) => JSON.stringify(f.name)).join(' | ');
    lines.push(`${quoteKey(oneof.name)}?: ${union}${input ? ' | null' : ''};`);
  }
  return lines;
}

class Writer {
  constructor() { this.lines = []; this.depth = 0; }
  line(text = '') { this.lines.push(text ? '  '.repeat(this.depth) + text : ''); }
  open(text) { this.line(text + ' {'); this.depth++; }
  close() { this.depth--; this.line('}'); }
  toString() { return this.lines.join('\n') + '\n'; }
}

function emitEnum(w, en, names) {
  const values = Object.keys(en.values);
  claim(names, en.name, en.fullName);
  claim(names, en.name + 'Input', en.fullName);
  w.line(`/** ${strip(en.fullName)} */`);
  w.line(`export type ${en.name} = ${values.map((v) => JSON.stringify(v)).join(' | ')};`);
  w.line(`export type ${en.name}Input = ${en.name} | number;`);
}

function claim(names, name, owner) {
  if (names.has(name)) throw new Error(`generated name ${name} collides in the namespace of ${strip(owner)}`);
  if (RESERVED_TS.has(name)) throw new Error(`generated name ${name} is a TypeScript reserved word`);
  names.add(name);
}

function nestedOf(ns) {
  return (ns.nestedArray ?? []).slice().sort(byName);
}

function emitInterface(w, name, lines) {
  if (lines.length === 0) {
    w.line(`export interface ${name} {}`);
    return;
  }
  w.open(`export interface ${name}`);
  for (const l of lines) w.line(l);
  w.close();
}

function emitMessage(root, w, type, names, ctx) {
  claim(names, type.name, type.fullName);
  claim(names, type.name + 'Input', type.fullName);
  ctx.messages.push(strip(type.fullName));
  w.line(`/** ${strip(type.fullName)} */`);
  emitInterface(w, type.name, fieldLines(root, type, false));
  w.line(`/** What encoding ${strip(type.fullName)} accepts. */`);
  emitInterface(w, `${type.name}Input`, fieldLines(root, type, true));
  const nested = nestedOf(type).filter((n) => n instanceof protobuf.Type || n instanceof protobuf.Enum);
  if (nested.length > 0) {
    w.open(`export namespace ${type.name}`);
    const inner = new Set();
    for (const n of nested) {
      if (n instanceof protobuf.Enum) emitEnum(w, n, inner);
      else emitMessage(root, w, n, inner, ctx);
    }
    w.close();
  }
}

function emitService(root, w, service, names, ctx) {
  const handlersName = `${service.name}Handlers`;
  const clientName = `${service.name}Client`;
  claim(names, handlersName, service.fullName);
  claim(names, clientName, service.fullName);
  const methods = service.methodsArray.map((m) => {
    m.resolve();
    const req = m.resolvedRequestType;
    const res = m.resolvedResponseType;
    return {
      name: m.name,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      req: refType(root, service, req, false),
      reqIn: refType(root, service, req, true),
      res: refType(root, service, res, false),
      resIn: refType(root, service, res, true),
      resIsEmpty: strip(res.fullName) === 'google.protobuf.Empty',
    };
  });
  w.line(`/** Server side of ${strip(service.fullName)}: one handler per RPC. */`);
  w.open(`export interface ${handlersName}`);
  for (const m of methods) {
    const input = m.requestStream ? `requests: AsyncIterable<${m.req}>` : `request: ${m.req}`;
    const out = m.resIsEmpty ? `${m.resIn} | void` : m.resIn;
    const result = m.responseStream ? `AsyncIterable<${m.resIn}>` : `Promise<${out}>`;
    w.line(`${m.name}(${input}, ctx: RpcContext): ${result};`);
  }
  w.close();
  w.line(`/** Caller side of ${strip(service.fullName)}. */`);
  w.open(`export interface ${clientName}`);
  for (const m of methods) {
    const input = m.requestStream ? `requests: AsyncIterable<${m.reqIn}>` : `request: ${m.reqIn}`;
    const result = m.responseStream ? `AsyncIterable<${m.res}>` : `Promise<${m.res}>`;
    w.line(`${m.name}(${input}, options?: RpcCallOptions): ${result};`);
  }
  w.close();
  ctx.services.push({ fullName: strip(service.fullName), handlersName, clientName, pkg: strip(service.parent.fullName), methods });
}

function emitNamespace(root, w, ns, ctx) {
  const children = nestedOf(ns);
  const own = children.filter((n) => n instanceof protobuf.Type || n instanceof protobuf.Enum || n instanceof protobuf.Service);
  const subs = children.filter((n) => !(n instanceof protobuf.Type || n instanceof protobuf.Enum || n instanceof protobuf.Service));
  if (own.length > 0) {
    w.line('');
    w.open(`export namespace ${strip(ns.fullName)}`);
    const names = new Set(subs.map((s) => s.name));
    for (const n of own) if (n instanceof protobuf.Enum) emitEnum(w, n, names);
    for (const n of own) if (n instanceof protobuf.Type) emitMessage(root, w, n, names, ctx);
    for (const n of own) if (n instanceof protobuf.Service) emitService(root, w, n, names, ctx);
    w.close();
  }
  for (const s of subs) emitNamespace(root, w, s, ctx);
}

export function generate() {
  const root = loadRoot();
  const w = new Writer();
  const ctx = { messages: [], services: [] };
  w.line('// Generated by tools/gen-api.mjs from packages/api/proto; do not edit. Regenerate with `node tools/gen-api.mjs`.');
  w.line('// Decoded shapes follow src/codec.ts conversionOptions: snake_case names, 64-bit integers as numbers, enums as');
  w.line('// names, bytes as Buffer, absent sub-messages as null. `...Input` types are what encode accepts.');
  w.line("import type { RpcContext } from '@berth/core';");
  w.line("import type { RpcCallOptions } from '../rpc-types.js';");
  for (const top of nestedOf(root)) emitNamespace(root, w, top, ctx);

  w.line('');
  w.line('/** Decoded shape of every message, by full proto name. */');
  w.open('export interface Messages');
  for (const m of ctx.messages.sort()) w.line(`${JSON.stringify(m)}: ${m};`);
  w.close();
  w.line('');
  w.line('/** Encodable shape of every message, by full proto name. */');
  w.open('export interface MessageInputs');
  for (const m of ctx.messages) w.line(`${JSON.stringify(m)}: ${m}Input;`);
  w.close();
  w.line('');
  w.line('export type MessageName = keyof Messages;');
  w.line('');
  w.line('/** Every service by full proto name: its handler and client interfaces and per-method types. */');
  w.open('export interface Services');
  for (const s of ctx.services.sort((a, b) => (a.fullName < b.fullName ? -1 : 1))) {
    w.open(`${JSON.stringify(s.fullName)}:`);
    w.line(`handlers: ${s.pkg}.${s.handlersName};`);
    w.line(`client: ${s.pkg}.${s.clientName};`);
    w.open('methods:');
    for (const m of s.methods) {
      w.open(`${m.name}:`);
      w.line(`request: ${m.req};`);
      w.line(`requestInput: ${m.reqIn};`);
      w.line(`response: ${m.res};`);
      w.line(`responseInput: ${m.resIn};`);
      w.line(`requestStream: ${m.requestStream};`);
      w.line(`responseStream: ${m.responseStream};`);
      w.close();
    }
    w.close();
    w.close();
  }
  w.close();
  w.line('');
  w.line('export type ServiceName = keyof Services;');
  return w.toString();
}

/** The descriptor module: the JSON of the Root (keepCase names, every file and the extra well-known types). */
function generateDescriptor() {
  const json = JSON.stringify(loadRoot().toJSON());
  return [
    '// Generated by tools/gen-api.mjs from packages/api/proto; do not edit. The protos as a protobufjs JSON descriptor,',
    '// parsed once at start (JSON.parse of a string is faster than evaluating the same object literal).',
    `export const DESCRIPTOR_JSON = ${JSON.stringify(json)};`,
    '',
  ].join('\n');
}

function main() {
  const outputs = [
    [outFile, generate()],
    [join(dirname(outFile), 'descriptor.ts'), generateDescriptor()],
  ];
  let stale = false;
  for (const [file, text] of outputs) {
    let current;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === text) continue;
    if (process.argv.includes('--check')) {
      process.stderr.write(`${file} is stale: run node tools/gen-api.mjs\n`);
      stale = true;
      continue;
    }
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  if (stale) process.exit(1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
