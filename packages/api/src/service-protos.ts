// Services described by a plugin's own .proto files (a third party's `io.example.hello.v1.Hello`), beside berth's
// API: each plugin's files load into a Root of their own, so two plugins can never clash over a message name, and
// the definitions use the shared codec (same conversions, same strict decoding).
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';
import type { ProtoSource } from '@berth/core';
import { findService, definitionOf, methodsOf, serviceDefinition, serviceMethods, type GrpcServiceDefinition, type ServiceMethod } from './services.js';

export interface ResolvedService {
  readonly name: string;
  readonly methods: readonly ServiceMethod[];
  readonly definition: GrpcServiceDefinition;
}

const WELL_KNOWN = /^google\/protobuf\/[a-z_]+\.proto$/;

/** Loads a plugin's .proto files into a fresh Root; an unreadable or invalid file is an Error naming it. */
export function loadProtoSource(source: ProtoSource): protobuf.Root {
  if (source.files.length === 0) throw new Error('proto: no .proto files given');
  const dirs = source.includeDirs?.length ? source.includeDirs : [dirname(source.files[0]!)];
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (isAbsolute(target)) return target;
    // protobufjs has the well-known types built in; an import of them must not be looked for on disk.
    if (WELL_KNOWN.test(target)) return target;
    for (const dir of dirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return origin ? join(dirname(origin), target) : target;
  };
  for (const file of source.files) {
    if (!isAbsolute(file)) throw new Error(`proto: ${file} is not an absolute path`);
    if (!existsSync(file)) throw new Error(`proto: ${file} does not exist`);
  }
  try {
    root.loadSync([...source.files], { keepCase: true });
    root.resolveAll();
  } catch (err) {
    throw new Error(`proto: cannot load ${source.files.join(', ')}: ${(err as Error).message}`, { cause: err });
  }
  return root;
}

/**
 * A service by its full name: from the plugin's own protos when it names some, else from berth's API. Throws an
 * Error saying where it looked when the service is not there.
 */
export function resolveService(name: string, proto?: ProtoSource): ResolvedService {
  if (!proto) {
    if (!findService(name)) throw new Error(`service ${name} is not part of berth's API (packages/api/proto); a plugin's own service names its .proto files`);
    return { name, methods: serviceMethods(name), definition: serviceDefinition(name) };
  }
  const root = loadProtoSource(proto);
  const found = root.lookup(`.${name}`);
  if (!(found instanceof protobuf.Service)) throw new Error(`service ${name} is not defined in ${proto.files.join(', ')}`);
  return { name, methods: methodsOf(found), definition: definitionOf(found) };
}
