// The schema registry: JSON Schemas per extension name, from config files and the API, persisted in the plugin's
// own root directory.
import { createHash } from 'node:crypto';
import { open, readdir, readFile, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import {
  DataLossError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  TMP_SUFFIX,
  writeFileAtomic,
  type AnyValue,
  type ExtensionSchema,
  type ExtensionSchemaRegistry,
  type Logger,
} from '@berth/core';
import { compileJsonSchema, describeSchemaErrors, listCapped, parseJsonValue } from './json-schema.js';
import { checkIndexedPaths } from './terms.js';

/** The file in the plugin's root that holds the API-registered schemas and the version counters. */
export const STATE_FILE = 'schemas.json';
const STATE_FORMAT = 1;
/** A FailedPrecondition for an incompatible replacement names at most this many stored values. */
export const MAX_REFUSED_LISTED = 10;
const MAX_NAME_LENGTH = 1024;
/** The compatibility scan yields to the event loop after this long. */
const SLICE_MS = 10;

/** One registered schema, compiled. */
export interface CompiledSchema {
  readonly schema: ExtensionSchema;
  readonly validate: ValidateFunction;
}

/** A stored value offered to a compatibility check; `namespace` and `id` name it in the refusal. */
export interface ExistingValue {
  readonly namespace?: string;
  readonly id?: string;
  readonly value: AnyValue;
}

interface PersistedSchema {
  name: string;
  schema: Record<string, unknown>;
  indexed_paths: string[];
  version: number;
  created_at: string;
  updated_at: string;
}

interface PersistedConfigSchema {
  fingerprint: string;
  version: number;
  created_at: string;
  updated_at: string;
}

/**
 * `schemas.json`: `versions` holds the last version given to every name ever registered (so a name deleted and
 * registered again continues its count); `api` the API-registered schemas; `config` what the config files held at
 * the last start (by fingerprint, to give a changed file's schema the next version).
 */
interface PersistedState {
  format: number;
  versions: Record<string, number>;
  api: Record<string, PersistedSchema>;
  config: Record<string, PersistedConfigSchema>;
}

export interface SchemaRegistryOptions {
  /** The plugin's own root directory. */
  readonly root: string;
  /** Schema files named by the config. */
  readonly files?: readonly string[];
  readonly log?: Logger;
  readonly now?: () => Date;
}

interface RegisterInput {
  readonly name: string;
  readonly schema: Readonly<Record<string, unknown>>;
  readonly indexedPaths?: readonly string[];
}

interface RegisterOptions {
  readonly force?: boolean;
  readonly existing?: AsyncIterable<AnyValue | ExistingValue>;
}

/** Names are the keys of Container.extensions (type URLs): non-empty, at most 1 KiB, no control characters. */
export function checkExtensionName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('extension name must not be empty');
  if (name.length > MAX_NAME_LENGTH) throw new InvalidArgumentError(`extension name "${name.slice(0, 40)}…" is longer than ${MAX_NAME_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new InvalidArgumentError(`extension name ${JSON.stringify(name)} holds a control character`);
  return name;
}

/** A canonical text of a schema document and its paths: object keys sorted, so key order does not make a new version. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

function fingerprint(schema: unknown, indexedPaths: readonly string[]): string {
  return createHash('sha256').update(canonical({ schema, indexedPaths })).digest('hex');
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((p) => b.includes(p));
}

function isExistingValue(item: AnyValue | ExistingValue): item is ExistingValue {
  return (item as ExistingValue).value !== undefined && !((item as ExistingValue).value instanceof Uint8Array);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/**
 * The ExtensionSchemaRegistry of io.berth.extensions.v1.json. Registrations and deletions run one at a time; each
 * is written to `schemas.json` (temporary file, fsync, rename, fsync of the directory) before it takes effect, so a
 * crash leaves the old or the new registry, and a registration that returned survives. While a replacement is
 * being checked against the stored values, writes must satisfy both the old and the new version, so no value the
 * new version refuses can slip in behind the check.
 */
export class JsonSchemaRegistry implements ExtensionSchemaRegistry {
  private readonly compiled = new Map<string, CompiledSchema>();
  /** Versions under a compatibility check, by name. */
  private readonly pending = new Map<string, CompiledSchema>();
  /** Config files by schema name (for messages). */
  private readonly configFiles = new Map<string, string>();
  private readonly listeners = new Set<(name: string) => void>();
  private state: PersistedState = { format: STATE_FORMAT, versions: {}, api: {}, config: {} };
  private queue: Promise<unknown> = Promise.resolve();
  private readonly now: () => Date;
  private readonly statePath: string;

  private constructor(private readonly options: SchemaRegistryOptions) {
    this.now = options.now ?? (() => new Date());
    this.statePath = join(options.root, STATE_FILE);
  }

  /** Loads the persisted registry and the config's schema files; any problem in either is an error naming the file. */
  static async open(options: SchemaRegistryOptions): Promise<JsonSchemaRegistry> {
    const registry = new JsonSchemaRegistry(options);
    await registry.load();
    return registry;
  }

  /** The compiled current version of a name, if any (what the policy validates against). */
  current(name: string): CompiledSchema | undefined {
    return this.compiled.get(name);
  }

  /** The version being checked for a replacement, if any. */
  candidate(name: string): CompiledSchema | undefined {
    return this.pending.get(name);
  }

  get(name: string): ExtensionSchema {
    const found = this.compiled.get(name);
    if (!found) throw new NotFoundError(`schema "${name}": not found`);
    return found.schema;
  }

  list(): ExtensionSchema[] {
    return [...this.compiled.values()].map((c) => c.schema).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  indexedPaths(name: string): readonly string[] {
    return this.compiled.get(name)?.schema.indexedPaths ?? [];
  }

  onIndexChange(listener: (name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  register(input: RegisterInput, options: RegisterOptions = {}): Promise<ExtensionSchema> {
    return this.serialize(() => this.doRegister(input, options));
  }

  delete(name: string): Promise<void> {
    return this.serialize(() => this.doDelete(name));
  }

  /** Waits for the registration or deletion under way, if any. */
  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async doRegister(input: RegisterInput, options: RegisterOptions): Promise<ExtensionSchema> {
    const name = checkExtensionName(input.name);
    const fromConfig = this.configFiles.get(name);
    if (fromConfig) {
      throw new FailedPreconditionError(`schema "${name}" is defined by the config file ${fromConfig}; change it there`);
    }
    const indexedPaths = checkIndexedPaths(name, input.indexedPaths ?? []);
    // Compiled from a copy: ajv keeps the schema object it compiled, and the caller's may change afterwards.
    const document = structuredClone(input.schema) as Record<string, unknown>;
    const validate = compileJsonSchema(name, document);
    const previous = this.compiled.get(name);
    if (previous && fingerprint(previous.schema.schema, previous.schema.indexedPaths) === fingerprint(input.schema, indexedPaths)) {
      return previous.schema; // the same schema again: no new version
    }
    const now = this.now();
    const version = (this.state.versions[name] ?? 0) + 1;
    const schema: ExtensionSchema = deepFreeze({
      name,
      schema: document,
      version,
      indexedPaths,
      source: 'api' as const,
      createdAt: previous?.schema.createdAt ?? now,
      updatedAt: now,
    });
    const candidate: CompiledSchema = { schema, validate };
    if (options.existing && !options.force) {
      this.pending.set(name, candidate);
      try {
        await this.checkCompatible(candidate, options.existing);
      } finally {
        this.pending.delete(name);
      }
    }
    const next: PersistedState = {
      ...this.state,
      versions: { ...this.state.versions, [name]: version },
      api: {
        ...this.state.api,
        [name]: { name, schema: document, indexed_paths: [...indexedPaths], version, created_at: schema.createdAt.toISOString(), updated_at: now.toISOString() },
      },
    };
    await this.persist(next);
    this.compiled.set(name, candidate);
    if (!sameSet(previous?.schema.indexedPaths ?? [], indexedPaths)) this.notify(name);
    this.options.log?.info('extension schema registered', { name, version, indexedPaths, forced: options.force === true });
    return schema;
  }

  private async doDelete(name: string): Promise<void> {
    const found = this.compiled.get(name);
    if (!found) throw new NotFoundError(`schema "${name}": not found`);
    const fromConfig = this.configFiles.get(name);
    if (fromConfig) throw new FailedPreconditionError(`schema "${name}" is defined by the config file ${fromConfig}; remove it there`);
    const api = { ...this.state.api };
    delete api[name];
    await this.persist({ ...this.state, api });
    this.compiled.delete(name);
    if (found.schema.indexedPaths.length > 0) this.notify(name);
    this.options.log?.info('extension schema deleted', { name, version: found.schema.version });
  }

  /** FailedPrecondition naming the stored values (first MAX_REFUSED_LISTED) that the candidate refuses. */
  private async checkCompatible(candidate: CompiledSchema, existing: AsyncIterable<AnyValue | ExistingValue>): Promise<void> {
    const { name, version } = candidate.schema;
    const refused: string[] = [];
    let count = 0;
    let sliceStart = performance.now();
    for await (const item of existing) {
      const stored = isExistingValue(item) ? item : { value: item };
      const label = stored.id !== undefined ? `${stored.namespace ? `${stored.namespace}/` : ''}${stored.id}` : `value ${count + 1}`;
      count++;
      let problems: string[] = [];
      try {
        const doc = parseJsonValue(label, stored.value);
        if (!candidate.validate(doc)) problems = describeSchemaErrors(candidate.validate.errors);
      } catch {
        problems = ['not JSON'];
      }
      if (problems.length > 0) refused.push(`${label} (${listCapped(problems, 3)})`);
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
    if (refused.length > 0) {
      throw new FailedPreconditionError(
        `schema "${name}" version ${version} would refuse ${refused.length} of ${count} stored values: ${listCapped(refused, MAX_REFUSED_LISTED)}; register it with force to replace the schema anyway`,
      );
    }
  }

  private notify(name: string): void {
    for (const listener of this.listeners) {
      try {
        listener(name);
      } catch (err) {
        this.options.log?.warn('extension index listener failed', { name, error: (err as Error).message });
      }
    }
  }

  private async persist(next: PersistedState): Promise<void> {
    await writeFileAtomic(this.statePath, JSON.stringify(next, null, 1) + '\n', { mode: 0o600 });
    // The rename is durable only once the directory is.
    const dir = await open(this.options.root, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.state = next;
  }

  private async load(): Promise<void> {
    const { root } = this.options;
    // Debris of a write interrupted before its rename.
    for (const entry of await readdir(root)) {
      if (entry.startsWith(`${STATE_FILE}.`) && entry.endsWith(TMP_SUFFIX)) await rm(join(root, entry), { force: true });
    }
    let text: string | undefined;
    try {
      text = await readFile(this.statePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) this.state = parseState(this.statePath, text);
    for (const entry of Object.values(this.state.api)) {
      const validate = compileJsonSchema(entry.name, entry.schema);
      this.compiled.set(entry.name, {
        validate,
        schema: deepFreeze({
          name: entry.name,
          schema: entry.schema,
          version: entry.version,
          indexedPaths: entry.indexed_paths,
          source: 'api' as const,
          createdAt: new Date(entry.created_at),
          updatedAt: new Date(entry.updated_at),
        }),
      });
    }
    await this.loadConfigFiles();
  }

  private async loadConfigFiles(): Promise<void> {
    const files = this.options.files ?? [];
    if (files.length === 0 && Object.keys(this.state.config).length === 0) return;
    const now = this.now();
    const next: PersistedState = { ...this.state, versions: { ...this.state.versions }, api: { ...this.state.api }, config: {} };
    for (const file of files) {
      for (const def of await readSchemaFile(file)) {
        const other = this.configFiles.get(def.name);
        if (other) throw new InvalidArgumentError(`schema file ${file}: schema "${def.name}" is also defined in ${other}`);
        let validate: ValidateFunction;
        let indexedPaths: string[];
        try {
          indexedPaths = checkIndexedPaths(def.name, def.indexedPaths);
          validate = compileJsonSchema(def.name, def.schema);
        } catch (err) {
          throw new InvalidArgumentError(`schema file ${file}: ${(err as Error).message}`, { cause: err });
        }
        const print = fingerprint(def.schema, indexedPaths);
        const before = this.state.config[def.name];
        const api = next.api[def.name];
        if (api) {
          // The config takes the name over; the API's version stays counted.
          delete next.api[def.name];
          this.compiled.delete(def.name);
          this.options.log?.warn('a schema file replaces the API-registered schema of the same name', { name: def.name, file, replacedVersion: api.version });
        }
        const record: PersistedConfigSchema =
          before && before.fingerprint === print
            ? before
            : { fingerprint: print, version: (next.versions[def.name] ?? 0) + 1, created_at: (before?.created_at ?? now.toISOString()), updated_at: now.toISOString() };
        next.versions[def.name] = Math.max(next.versions[def.name] ?? 0, record.version);
        next.config[def.name] = record;
        this.configFiles.set(def.name, file);
        this.compiled.set(def.name, {
          validate,
          schema: deepFreeze({
            name: def.name,
            schema: def.schema,
            version: record.version,
            indexedPaths,
            source: 'config' as const,
            createdAt: new Date(record.created_at),
            updatedAt: new Date(record.updated_at),
          }),
        });
      }
    }
    if (JSON.stringify(next) !== JSON.stringify(this.state)) await this.persist(next);
  }
}

function parseState(path: string, text: string): PersistedState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DataLossError(`${path}: the schema registry is not JSON (${(err as Error).message}); restore it or remove it to start without API-registered schemas`);
  }
  const state = raw as Partial<PersistedState> | null;
  if (!state || typeof state !== 'object' || state.format !== STATE_FORMAT || typeof state.versions !== 'object' || typeof state.api !== 'object' || typeof state.config !== 'object') {
    throw new DataLossError(`${path}: not a schema registry of format ${STATE_FORMAT}; restore it or remove it to start without API-registered schemas`);
  }
  return state as PersistedState;
}

interface SchemaDefinition {
  readonly name: string;
  readonly schema: Record<string, unknown>;
  readonly indexedPaths: string[];
}

const FILE_KEYS = new Set(['name', 'schema', 'indexed_paths']);

/** A schema file: one `{name, schema, indexed_paths?}` object, or an array of them. */
export async function readSchemaFile(file: string): Promise<SchemaDefinition[]> {
  if (!isAbsolute(file)) throw new InvalidArgumentError(`schema file ${file}: the path must be absolute`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`schema file ${file}: cannot read it: ${(err as Error).message}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`schema file ${file}: not JSON: ${(err as Error).message}`);
  }
  const items = Array.isArray(raw) ? raw : [raw];
  return items.map((item, i) => {
    const where = Array.isArray(raw) ? `schema file ${file} [${i}]` : `schema file ${file}`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new InvalidArgumentError(`${where}: expected an object {name, schema, indexed_paths}`);
    const obj = item as Record<string, unknown>;
    const unknown = Object.keys(obj).filter((k) => !FILE_KEYS.has(k));
    if (unknown.length > 0) throw new InvalidArgumentError(`${where}: unknown key ${unknown.map((k) => `"${k}"`).join(', ')} (expected name, schema, indexed_paths)`);
    let name: string;
    try {
      name = checkExtensionName(obj.name);
    } catch (err) {
      throw new InvalidArgumentError(`${where}: ${(err as Error).message}`);
    }
    if (obj.schema === null || typeof obj.schema !== 'object' || Array.isArray(obj.schema)) throw new InvalidArgumentError(`${where}: "schema" must be a JSON object`);
    const paths = obj.indexed_paths ?? [];
    if (!Array.isArray(paths) || paths.some((p) => typeof p !== 'string')) throw new InvalidArgumentError(`${where}: "indexed_paths" must be an array of strings`);
    return { name, schema: obj.schema as Record<string, unknown>, indexedPaths: paths as string[] };
  });
}
