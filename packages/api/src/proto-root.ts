// The protos as one protobufjs Root, built once, lazily, from the descriptor tools/gen-api.mjs generates (no .proto
// text is parsed at run time). loadProtoRoot parses the .proto files themselves, for the generator and the tests that
// compare the two; the proto directory is found relative to this module (src/ under vitest, dist/ after a build).
import { readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { DESCRIPTOR_JSON } from './generated/descriptor.js';

/** Absolute path of the directory holding the project's .proto files. */
export const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));

/** Well-known types that none of our files import but that callers may want to encode (Any payloads). */
const EXTRA_WELL_KNOWN = [
  'google/protobuf/any.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/empty.proto',
  'google/protobuf/field_mask.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/timestamp.proto',
];

let cached: protobuf.Root | undefined;

/** Every .proto file under PROTO_DIR, as absolute paths in a stable order. */
export function protoFiles(dir = PROTO_DIR): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * Builds a fresh Root from the given proto directory. Imports are written relative to that directory;
 * `google/protobuf/*.proto` come from protobufjs's bundled definitions.
 */
export function loadProtoRoot(dir = PROTO_DIR): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(dir, target));
  root.loadSync([...protoFiles(dir), ...EXTRA_WELL_KNOWN], { keepCase: true });
  root.resolveAll();
  return root;
}

/**
 * A Root made from the generated descriptor, its types resolved as they are used (each codec resolves its fields,
 * each service its methods), not all at once as Root.fromJSON does: a command that calls one service pays for that
 * service's types only (resolving every type took 29 ms of `berth version`'s start).
 */
export function newDescriptorRoot(): protobuf.Root {
  const json = JSON.parse(DESCRIPTOR_JSON) as protobuf.INamespace;
  const root = new protobuf.Root();
  if (json.options) root.setOptions(json.options);
  root.addJSON(json.nested ?? {});
  // Field presence and packing come from each file's syntax/edition features, which protobufjs works out in a pass
  // of its own inside resolveAll; that pass is cheap and must run before any field is read.
  const internals = root as unknown as { _edition: unknown; _resolveFeaturesRecursive(edition: unknown): void };
  internals._resolveFeaturesRecursive(internals._edition);
  return root;
}

/** The shared Root (newDescriptorRoot), made on first use. */
export function protoRoot(): protobuf.Root {
  cached ??= newDescriptorRoot();
  return cached;
}
