/**
 * Identifier, label and topic validation, with containerd's rules and messages (identifiers/validate.go,
 * labels/validate.go, events/exchange's validateTopic). Lengths are counted in UTF-8 bytes, as Go does.
 */
import { InvalidArgumentError } from '../errdefs/index.js';

export const MAX_IDENTIFIER_LENGTH = 76;
export const MAX_LABEL_SIZE = 4096;

/** Alphanumeric runs joined by single `.`, `_` or `-`: safe as a path component. */
const IDENTIFIER_RE = /^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$/;

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Throws InvalidArgumentError unless `s` is a valid identifier (namespaces, containers, leases, …). */
export function validateIdentifier(s: string): void {
  if (s.length === 0) throw new InvalidArgumentError('identifier must not be empty');
  if (byteLength(s) > MAX_IDENTIFIER_LENGTH) {
    throw new InvalidArgumentError(
      `identifier ${JSON.stringify(s)} greater than maximum length (${MAX_IDENTIFIER_LENGTH} characters)`,
    );
  }
  if (!IDENTIFIER_RE.test(s)) {
    throw new InvalidArgumentError(`identifier ${JSON.stringify(s)} must match ${IDENTIFIER_RE.source}`);
  }
}

/**
 * Throws InvalidArgumentError for an empty key, whatever the value (containerd's bolt store refuses it with bbolt's
 * `key required`, classified Unknown; we say why and classify it), or when key and value exceed 4096 bytes.
 * The one label check of the project: every store that keeps labels calls this (or validateLabels).
 */
export function validateLabel(key: string, value: string): void {
  if (key === '') throw new InvalidArgumentError('label key required');
  if (byteLength(key) + byteLength(value) > MAX_LABEL_SIZE) {
    const shown = key.length > 10 ? key.slice(0, 10) : key;
    throw new InvalidArgumentError(
      `label key and value greater than maximum size (${MAX_LABEL_SIZE} bytes), key: ${shown}`,
    );
  }
}

/** Validates every label of a map (absent labels are valid). */
export function validateLabels(labels: Readonly<Record<string, string>> | undefined): void {
  for (const [key, value] of Object.entries(labels ?? {})) validateLabel(key, value);
}

/** Throws InvalidArgumentError unless the topic is `/`-rooted with identifier components (`/tasks/exit`). */
export function validateTopic(topic: string): void {
  if (topic === '') throw new InvalidArgumentError('must not be empty');
  if (!topic.startsWith('/')) throw new InvalidArgumentError("must start with '/'");
  if (topic.length === 1) throw new InvalidArgumentError('must have at least one component');
  for (const component of topic.slice(1).split('/')) {
    try {
      validateIdentifier(component);
    } catch (err) {
      throw new InvalidArgumentError(
        `failed validation on component ${JSON.stringify(component)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}
