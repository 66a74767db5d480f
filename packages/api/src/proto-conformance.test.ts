// Compares every message, enum and service of our protos with containerd 1.6's own .proto files (Debian's
// golang-github-containerd-containerd-dev), when they are installed: names, field numbers, types, labels, map key
// types, enum values, methods and streaming flags must all agree. containerd 2's Transfer and Streaming services and
// their types are not in 1.6: CONTAINERD_2 states their shapes as containerd 2.0.0's protos define them, and when
// BERTH_CONTAINERD2_SRC names a containerd 2 checkout, its own protos are compared as well.
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

/**
 * containerd 2.0.0's shapes (api/services/transfer/v1, api/services/streaming/v1, api/types/transfer, and
 * containerd.types.Platform, which gained os_version), in describeAll's notation.
 */
const CONTAINERD_2: Record<string, string> = {
  '.containerd.services.transfer.v1.Transfer': 'service Transfer(.containerd.services.transfer.v1.TransferRequest) .google.protobuf.Empty',
  '.containerd.services.transfer.v1.TransferRequest':
    'message 1 source .google.protobuf.Any; 2 destination .google.protobuf.Any; 3 options .containerd.services.transfer.v1.TransferOptions',
  '.containerd.services.transfer.v1.TransferOptions': 'message 1 progress_stream string',
  '.containerd.services.streaming.v1.Streaming': 'service Stream(stream .google.protobuf.Any) stream .google.protobuf.Any',
  '.containerd.services.streaming.v1.StreamInit': 'message 1 id string',
  '.containerd.types.Platform': 'message 1 os string; 2 architecture string; 3 variant string; 4 os_version string',
  '.containerd.types.transfer.ImageStore':
    'message 1 name string; 10 unpacks repeated .containerd.types.transfer.UnpackConfiguration; 2 labels map<string,string>; ' +
    '3 platforms repeated .containerd.types.Platform; 4 all_metadata bool; 5 manifest_limit uint32; ' +
    '6 extra_references repeated .containerd.types.transfer.ImageReference',
  '.containerd.types.transfer.UnpackConfiguration': 'message 1 platform .containerd.types.Platform; 2 snapshotter string',
  '.containerd.types.transfer.ImageReference':
    'message 1 name string; 2 is_prefix bool; 3 allow_overwrite bool; 4 add_digest bool; 5 skip_named_digest bool',
  '.containerd.types.transfer.OCIRegistry': 'message 1 reference string; 2 resolver .containerd.types.transfer.RegistryResolver',
  '.containerd.types.transfer.RegistryResolver':
    'message 1 auth_stream string; 2 headers map<string,string>; 3 host_dir string; 4 default_scheme string',
  '.containerd.types.transfer.AuthRequest': 'message 1 host string; 2 reference string; 3 wwwauthenticate repeated string',
  '.containerd.types.transfer.AuthType': 'enum {"NONE":0,"CREDENTIALS":1,"REFRESH":2,"HEADER":3}',
  '.containerd.types.transfer.AuthResponse':
    'message 1 authType .containerd.types.transfer.AuthType; 2 secret string; 3 username string; 4 expire_at .google.protobuf.Timestamp',
  '.containerd.types.transfer.Progress':
    'message 1 event string; 2 name string; 3 parents repeated string; 4 progress int64; 5 total int64; 6 desc .containerd.types.Descriptor',
  '.containerd.types.transfer.ImageImportStream': 'message 1 stream string; 2 media_type string; 3 force_compress bool',
  '.containerd.types.transfer.ImageExportStream':
    'message 1 stream string; 2 media_type string; 3 platforms repeated .containerd.types.Platform; 4 all_platforms bool; ' +
    '5 skip_compatibility_manifest bool; 6 skip_non_distributable bool',
  '.containerd.types.transfer.Data': 'message 1 data bytes',
  '.containerd.types.transfer.WindowUpdate': 'message 1 update int32',
};

/** containerd 2's own protos for the names of CONTAINERD_2, from a checkout (its api/ directory). */
function loadContainerd2(checkout: string): protobuf.Root {
  const api = (path: string) => join(checkout, 'api', path);
  const files = [
    'services/transfer/v1/transfer.proto',
    'services/streaming/v1/streaming.proto',
    ...readdirSync(api('types/transfer')).filter((f) => f.endsWith('.proto')).map((f) => `types/transfer/${f}`),
  ].map(api);
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    const prefix = 'github.com/containerd/containerd/api/';
    if (target.startsWith(prefix)) return api(target.slice(prefix.length));
    return target;
  };
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  return root;
}

describe('wire identity with containerd 2 protos (Transfer, Streaming and their types)', () => {
  it('defines each containerd 2 message, enum and service as containerd 2.0 does', () => {
    const ours = describeAll(protoRoot());
    const mismatches = Object.entries(CONTAINERD_2)
      .filter(([name, shape]) => ours.get(name) !== shape)
      .map(([name, shape]) => `${name}\n  containerd 2: ${shape}\n  ours:         ${ours.get(name) ?? '(missing)'}`);
    expect(mismatches).toEqual([]);
  });

  const checkout = process.env.BERTH_CONTAINERD2_SRC;
  it.skipIf(!checkout || !existsSync(join(checkout, 'api/services/transfer/v1/transfer.proto')))(
    'agrees with the protos of the containerd 2 checkout in BERTH_CONTAINERD2_SRC',
    () => {
      const theirs = describeAll(loadContainerd2(checkout!));
      const ours = describeAll(protoRoot());
      const mismatches = Object.keys(CONTAINERD_2)
        .filter((n) => theirs.get(n) !== ours.get(n))
        .map((n) => `${n}\n  containerd 2: ${theirs.get(n) ?? '(missing)'}\n  ours:         ${ours.get(n) ?? '(missing)'}`);
      expect(mismatches).toEqual([]);
    },
  );
});

describe.skipIf(!available)('wire identity with containerd 1.6 protos', () => {
  it('defines every containerd message, enum and service exactly as containerd does', () => {
    const theirs = describeAll(loadReference());
    const ours = describeAll(protoRoot());
    expect(theirs.size).toBeGreaterThan(150);
    const mismatches: string[] = [];
    for (const [name, shape] of theirs) {
      if (name.startsWith('.google.protobuf.')) continue;
      // containerd 2 extended it (os_version): checked against containerd 2 above.
      if (CONTAINERD_2[name]) continue;
      const mine = ours.get(name);
      if (mine !== shape) mismatches.push(`${name}\n  containerd: ${shape}\n  ours:       ${mine ?? '(missing)'}`);
    }
    expect(mismatches).toEqual([]);
  });
});

// The cgroup statistics that Tasks.Metrics carries (github.com/containerd/cgroups, Debian's
// golang-github-containerd-cgroups-dev): stats/v1 for cgroup v1 hosts, v2/stats for cgroup v2.
const CGROUPS = join(GOCODE, 'github.com/containerd/cgroups');
const CGROUP_PROTOS = ['stats/v1/metrics.proto', 'v2/stats/metrics.proto'].map((f) => join(CGROUPS, f));

describe.skipIf(!CGROUP_PROTOS.every((f) => existsSync(f)))('wire identity with containerd cgroups stats protos', () => {
  it('defines io.containerd.cgroups.v1 and v2 exactly as containerd/cgroups does', () => {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith('gogoproto/') ? null : target);
    root.loadSync(CGROUP_PROTOS, { keepCase: true });
    root.resolveAll();
    const theirs = describeAll(root);
    const ours = describeAll(protoRoot());
    const names = [...theirs.keys()].filter((n) => n.startsWith('.io.containerd.cgroups.'));
    expect(names).toContain('.io.containerd.cgroups.v1.Metrics');
    expect(names).toContain('.io.containerd.cgroups.v2.Metrics');
    const mismatches = names
      .filter((n) => theirs.get(n) !== ours.get(n))
      .map((n) => `${n}\n  containerd: ${theirs.get(n)}\n  ours:       ${ours.get(n) ?? '(missing)'}`);
    expect(mismatches).toEqual([]);
  });
});
