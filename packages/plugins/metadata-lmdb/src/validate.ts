/**
 * Validation helpers of this store. Identifiers, labels and digests use core's (containerd's rules and messages);
 * digests are sha256 only, like the raw content store.
 */
import { digestHex, InvalidArgumentError, isSha256Hex, validateIdentifier } from '@berth/core';

export { validateIdentifier, validateLabels } from '@berth/core';

/** Keys of lmdb are limited to ~1978 bytes; free-form key parts (refs, lease ids) stay well below. */
const KEY_PART_MAX = 1024;

export function validateNamespace(ns: string): void {
  if (!ns) throw new InvalidArgumentError('namespace is required');
  try {
    validateIdentifier(ns);
  } catch (err) {
    throw new InvalidArgumentError(`namespace validation: ${(err as Error).message}`, { cause: err });
  }
}

export function isDigest(s: string): boolean {
  return s.startsWith('sha256:') && isSha256Hex(s.slice(7));
}

export function validateDigest(s: string, what = 'digest'): void {
  digestHex(s, what);
}

/** A free-form string used as a key part (ingest ref, lease id, snapshot key). */
export function validateKeyPart(s: string, what: string): void {
  if (s.length === 0) throw new InvalidArgumentError(`${what} must not be empty`);
  if (Buffer.byteLength(s) > KEY_PART_MAX) throw new InvalidArgumentError(`${what} longer than ${KEY_PART_MAX} bytes`);
  if (s.includes('\0')) throw new InvalidArgumentError(`${what} must not contain NUL characters`);
}
