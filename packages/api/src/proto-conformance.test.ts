// Compares every message, enum and service of our protos with containerd 1.6's own .proto files (Debian's
// golang-github-containerd-containerd-dev), when they are installed: names, field numbers, types, labels, map key
// types, enum values, methods and streaming flags must all agree.
import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { protoRoot } from './proto-root.js';

const GOCODE = '/usr/share/gocode/src';
const CONTAINERD = join(GOCODE, 'github.com/containerd/containerd');
const EXTERNAL: Record<string, string> = {
  'google/rpc/status.proto': join(GOCODE, 'github.com/gogo/googleapis/google/rpc/status.proto'),
  'grpc/health/v1/health.proto': join(
    GOCODE,
    'google.golang.org/grpc/debian/missing-sources/grpc/grpc-proto/master/grpc/health/v1/health.proto',
  ),
};
const available = existsSync(join(CONTAINERD, 'api')) && Object.values(EXTERNAL).every((p) => existsSync(p));

function loadReference(): protobuf.Root {
  const files = readdirSync(CONTAINERD, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.proto') && (f.startsWith('api/') || f.startsWith('runtime/v2/')))
    .map((f) => join(CONTAINERD, f));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target.startsWith('gogoproto/') || target.endsWith('protobuf/plugin/fieldpath.proto')) return null;
    if (isAbsolute(target)) return target;
    if (EXTERNAL[target]) return EXTERNAL[target];
    const prefix = 'github.com/containerd/containerd/';
    return join(CONTAINERD, target.startsWith(prefix) ? target.slice(prefix.length) : target);
  };
  root.loadSync([...files, ...Object.values(EXTERNAL)], { keepCase: true });
  root.resolveAll();
  return root;
}

function describeAll(root: protobuf.Root): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) {
        const fields = obj.fieldsArray.map((f) => {
          f.resolve();
          const type = f.resolvedType ? f.resolvedType.fullName : f.type;
          const shape = f instanceof protobuf.MapField ? `map<${f.keyType},${type}>` : f.repeated ? `repeated ${type}` : type;
          return `${f.id} ${f.name} ${shape}`;
        });
        out.set(obj.fullName, `message ${fields.sort().join('; ')}`);
      } else if (obj instanceof protobuf.Enum) {
        out.set(obj.fullName, `enum ${JSON.stringify(obj.values)}`);
      } else if (obj instanceof protobuf.Service) {
        const methods = obj.methodsArray.map((m) => {
          m.resolve();
          return `${m.name}(${m.requestStream ? 'stream ' : ''}${m.resolvedRequestType?.fullName}) ${m.responseStream ? 'stream ' : ''}${m.resolvedResponseType?.fullName}`;
        });
        out.set(obj.fullName, `service ${methods.join('; ')}`);
      }
      if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type) walk(obj);
    }
  };
  walk(root);
  return out;
}

describe.skipIf(!available)('wire identity with containerd 1.6 protos', () => {
  it('defines every containerd message, enum and service exactly as containerd does', () => {
    const theirs = describeAll(loadReference());
    const ours = describeAll(protoRoot());
    expect(theirs.size).toBeGreaterThan(150);
    const mismatches: string[] = [];
    for (const [name, shape] of theirs) {
      if (name.startsWith('.google.protobuf.')) continue;
      const mine = ours.get(name);
      if (mine !== shape) mismatches.push(`${name}\n  containerd: ${shape}\n  ours:       ${mine ?? '(missing)'}`);
    }
    expect(mismatches).toEqual([]);
  });
});
