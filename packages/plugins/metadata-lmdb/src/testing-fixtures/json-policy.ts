/**
 * A small extension policy for the store's tests (the real one is the extensions-json plugin, which this package
 * never imports): values are JSON, a declared path's scalar (or each scalar of an array) is a term, and a value
 * holding `"invalid": true` is refused, naming its pointer.
 */
import { InvalidArgumentError, type AnyValue, type ContainerExtensionPolicy, type ExtensionTerm } from '@berth/core';

export class TestJsonPolicy implements ContainerExtensionPolicy {
  readonly validated: Array<{ namespace: string; id: string; name: string }> = [];
  private readonly indexed = new Map<string, string[]>();
  private readonly listeners = new Set<(name: string) => void>();

  constructor(indexed: Record<string, string[]> = {}) {
    for (const [name, paths] of Object.entries(indexed)) this.indexed.set(name, paths);
  }

  /** Changes the indexed paths of `name` and tells the store, as a schema registration would. */
  setIndexed(name: string, paths: string[]): void {
    this.indexed.set(name, paths);
    for (const listener of this.listeners) listener(name);
  }

  validate(namespace: string, id: string, name: string, value: AnyValue): void {
    this.validated.push({ namespace, id, name });
    const doc = parse(value);
    if (doc && typeof doc === 'object' && (doc as Record<string, unknown>).invalid === true) {
      throw new InvalidArgumentError(`extension ${JSON.stringify(name)} is invalid: /invalid: must not be true`);
    }
  }

  terms(name: string, value: AnyValue): readonly ExtensionTerm[] {
    const doc = parse(value);
    const out: ExtensionTerm[] = [];
    for (const path of this.indexed.get(name) ?? []) {
      let node: unknown = doc;
      for (const part of path.split('.')) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined;
      for (const leaf of Array.isArray(node) ? node : [node]) {
        if (typeof leaf === 'string' || typeof leaf === 'number' || typeof leaf === 'boolean') out.push({ path, value: String(leaf) });
      }
    }
    return out;
  }

  indexedPaths(name: string): readonly string[] {
    return this.indexed.get(name) ?? [];
  }

  onIndexChange(listener: (name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function parse(value: AnyValue): unknown {
  try {
    return JSON.parse(Buffer.from(value.value).toString('utf8'));
  } catch {
    return undefined;
  }
}

export const json = (typeUrl: string, doc: unknown): AnyValue => ({ typeUrl, value: Buffer.from(JSON.stringify(doc)) });
