// Loads packages/api/proto into one protobufjs Root, lazily and once. The proto directory is found relative to this
// module, which sits in src/ under vitest and in dist/ after a build: both are siblings of proto/.
import { readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

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

/** The shared Root, loaded on first use. */
export function protoRoot(): protobuf.Root {
  cached ??= loadProtoRoot();
  return cached;
}
