// What the containers store applies to every extension it writes: validation against the registered schema, and
// the index terms of the schema's indexed paths.
import { InvalidArgumentError, type AnyValue, type ContainerExtensionPolicy, type ExtensionTerm } from '@berth/core';
import { describeSchemaErrors, listCapped, parseJsonValue } from './json-schema.js';
import type { CompiledSchema, JsonSchemaRegistry } from './schema-registry.js';
import { termsOf } from './terms.js';

export interface JsonExtensionPolicyOptions {
  /** Refuse extensions whose name has no schema (config `require_registered`). */
  readonly requireRegistered?: boolean;
}

/**
 * The ContainerExtensionPolicy of io.berth.extensions.v1.json. Synchronous and free of I/O: the store calls it
 * inside its write transaction. The value a validation parsed is kept (weakly, by the value object) for the
 * `terms` call that follows it on the same write, so a document is parsed once per write.
 */
export class JsonExtensionPolicy implements ContainerExtensionPolicy {
  private readonly parsed = new WeakMap<AnyValue, unknown>();

  constructor(
    private readonly registry: JsonSchemaRegistry,
    private readonly options: JsonExtensionPolicyOptions = {},
  ) {}

  validate(_namespace: string, containerId: string, name: string, value: AnyValue): void {
    const current = this.registry.current(name);
    const what = `extension "${name}" of container "${containerId}"`;
    if (!current) {
      if (this.options.requireRegistered) {
        throw new InvalidArgumentError(`${what}: no schema is registered for "${name}" and this daemon requires one (require_registered)`);
      }
      return; // stored untouched, as containerd stores any Any
    }
    const doc = parseJsonValue(what, value);
    check(what, current, doc);
    // A replacement under its compatibility check must accept it too (see JsonSchemaRegistry).
    const candidate = this.registry.candidate(name);
    if (candidate) check(what, candidate, doc);
    this.parsed.set(value, doc);
  }

  terms(name: string, value: AnyValue): readonly ExtensionTerm[] {
    const paths = this.registry.indexedPaths(name);
    if (paths.length === 0) return [];
    let doc: unknown;
    if (this.parsed.has(value)) doc = this.parsed.get(value);
    else {
      try {
        doc = parseJsonValue(name, value);
      } catch {
        return []; // a value stored before its schema (or under force) that is not JSON has no terms
      }
    }
    return termsOf(doc, paths);
  }

  indexedPaths(name: string): readonly string[] {
    return this.registry.indexedPaths(name);
  }

  onIndexChange(listener: (name: string) => void): () => void {
    return this.registry.onIndexChange(listener);
  }
}

function check(what: string, compiled: CompiledSchema, doc: unknown): void {
  if (compiled.validate(doc)) return;
  const errors = describeSchemaErrors(compiled.validate.errors);
  throw new InvalidArgumentError(`${what} does not match schema version ${compiled.schema.version}: ${listCapped(errors)}`);
}
