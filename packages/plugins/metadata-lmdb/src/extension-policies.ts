import type { AnyValue, ContainerExtensionPolicy, Logger } from '@berth/core';
import type { StoredTerm } from './schema.js';

/**
 * The contributed extension policies as one: every policy validates, the index terms of a value are those of all
 * policies (deduplicated, in a stable order), and a path is indexed when some policy indexes it. With no policy,
 * extensions are stored untouched and nothing is indexed (containerd's behaviour).
 */
export class ExtensionPolicies {
  private readonly policies: readonly ContainerExtensionPolicy[];

  constructor(policies: Iterable<ContainerExtensionPolicy> = []) {
    this.policies = [...policies];
  }

  get size(): number {
    return this.policies.length;
  }

  /** Throws what the first refusing policy throws (InvalidArgumentError). */
  validate(namespace: string, containerId: string, name: string, value: AnyValue): void {
    for (const policy of this.policies) policy.validate(namespace, containerId, name, value);
  }

  terms(name: string, value: AnyValue): StoredTerm[] {
    const seen = new Map<string, StoredTerm>();
    for (const policy of this.policies) {
      for (const term of policy.terms(name, value)) {
        if (typeof term?.path !== 'string' || typeof term.value !== 'string') continue;
        seen.set(`${term.path}\0${term.value}`, [term.path, term.value]);
      }
    }
    return [...seen.keys()].sort().map((k) => seen.get(k)!);
  }

  isIndexed(name: string, path: string): boolean {
    return this.policies.some((policy) => policy.indexedPaths(name).includes(path));
  }

  indexedPaths(name: string): string[] {
    return [...new Set(this.policies.flatMap((policy) => [...policy.indexedPaths(name)]))].sort();
  }

  /** Subscribes to every policy; the returned function unsubscribes from all. */
  onIndexChange(listener: (name: string) => void, log: Logger): () => void {
    const offs = this.policies.map((policy) =>
      policy.onIndexChange((name) => {
        try {
          listener(name);
        } catch (err) {
          log.warn('extension re-index failed to start', { name, error: err });
        }
      }),
    );
    return () => {
      for (const off of offs) off();
    };
  }
}
