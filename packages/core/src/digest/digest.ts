/**
 * Digests, one set of rules and messages for every package (go-digest's, as containerd uses): `algorithm:encoded`,
 * algorithms sha256, sha384 and sha512 with their hex lengths. Stores accept only the canonical sha256, so a digest
 * they take is always safe to turn into a path.
 */
import { createHash, type Hash } from 'node:crypto';
import { InvalidArgumentError } from '../errdefs/index.js';

export const CANONICAL_ALGORITHM = 'sha256';
/** The digest of zero bytes. */
export const EMPTY_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Hex length of each algorithm a Go client can name (go-digest's registered algorithms). */
const ENCODED_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
const ALGORITHM_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/;
const ENCODED_RE = /^[a-f0-9]+$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Why `value` is not a digest (go-digest's wording), or undefined when it is one. */
export function digestProblem(value: string): string | undefined {
  if (typeof value !== 'string') return 'invalid checksum digest format';
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) return 'invalid checksum digest format';
  const algorithm = value.slice(0, colon);
  const encoded = value.slice(colon + 1);
  const length = ENCODED_LENGTH[algorithm];
  if (length === undefined) {
    return ALGORITHM_RE.test(algorithm) ? 'unsupported digest algorithm' : 'invalid checksum digest format';
  }
  if (encoded.length !== length) return 'invalid checksum digest length';
  if (!ENCODED_RE.test(encoded)) return 'invalid checksum digest format';
  return undefined;
}

/** Returns `value` when it is a digest; InvalidArgumentError `<what> "<value>" failed validation: <why>` otherwise. */
export function validateDigest(value: string, what = 'digest'): string {
  const problem = digestProblem(value);
  if (problem) throw new InvalidArgumentError(`${what} ${JSON.stringify(value)} failed validation: ${problem}`);
  return value;
}

/**
 * The hex part of a sha256 digest, for stores that keep blobs by it: anything else (malformed, or a well-formed
 * sha512) is InvalidArgumentError, so no digest ever becomes a path outside the store.
 */
export function digestHex(digest: string, what = 'digest'): string {
  validateDigest(digest, what);
  if (!digest.startsWith(`${CANONICAL_ALGORITHM}:`)) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(digest)} failed validation: unsupported digest algorithm (only sha256 is stored)`);
  }
  return digest.slice(CANONICAL_ALGORITHM.length + 1);
}

/** True when `name` could be the file name of a committed sha256 blob. */
export function isSha256Hex(name: string): boolean {
  return SHA256_HEX.test(name);
}

/** The hex sha256 of some bytes (or of a string's UTF-8). */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash(CANONICAL_ALGORITHM).update(data).digest('hex');
}

/** `sha256:<hex>` of some bytes (or of a string's UTF-8). */
export function sha256Digest(data: Uint8Array | string): string {
  return `${CANONICAL_ALGORITHM}:${sha256Hex(data)}`;
}

/** A running canonical hash. */
export function newDigester(): Hash {
  return createHash(CANONICAL_ALGORITHM);
}

/** The digest of what a running hash has seen so far, without finishing it. */
export function digestSoFar(hash: Hash): string {
  return `${CANONICAL_ALGORITHM}:${hash.copy().digest('hex')}`;
}
