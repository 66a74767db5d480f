import { InvalidArgumentError } from '@berth/core';

/** Hex length of each algorithm a Go client can name (go-digest's registered algorithms). */
const ENCODED_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
const ALGORITHM_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/;
const ENCODED_RE = /^[a-f0-9]+$/;

/** Why `value` is not a digest (go-digest's wording), or undefined when it is one. */
export function digestProblem(value: string): string | undefined {
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

/**
 * Checks a digest taken from a request before it reaches the store, so that nothing shaped like a path
 * (`sha256:../../x`) ever gets further. InvalidArgumentError otherwise.
 */
export function checkDigest(value: string, what = 'digest'): string {
  const problem = digestProblem(value);
  if (problem) throw new InvalidArgumentError(`${what} ${JSON.stringify(value)} failed validation: ${problem}`);
  return value;
}
