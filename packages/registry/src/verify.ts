// Digest and size checks of what a registry sent, for callers that stream a blob somewhere else than a content
// store (which verifies on commit by itself).
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DataLossError, validateDigest, type Descriptor } from '@berth/core';

/**
 * A pass-through stream that hashes what goes through it and, at its end, fails with DataLossError naming the
 * expected and actual digest (or size) when they differ from `desc`. Bytes beyond `desc.size` fail at once.
 * `offset` (with `prefix`, the bytes before it, when resuming) lets it check a body that starts mid-blob.
 */
export function verifyingStream(desc: Descriptor, options: { prefix?: Iterable<Uint8Array> } = {}): Transform {
  validateDigest(desc.digest);
  const algorithm = desc.digest.slice(0, desc.digest.indexOf(':'));
  const hash = createHash(algorithm);
  let seen = 0;
  for (const chunk of options.prefix ?? []) {
    hash.update(chunk);
    seen += chunk.length;
  }
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > desc.size) {
        callback(new DataLossError(`${desc.digest}: got more than the expected ${desc.size} bytes`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (seen !== desc.size) {
        callback(new DataLossError(`${desc.digest}: got ${seen} bytes, expected ${desc.size}`));
        return;
      }
      const actual = `${algorithm}:${hash.digest('hex')}`;
      callback(actual === desc.digest ? null : new DataLossError(`digest mismatch: expected ${desc.digest}, got ${actual}`));
    },
  });
}
