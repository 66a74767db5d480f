import type { Labels, OpContext } from './context.js';
import type { AnyValue } from './events.js';

/** containerd's containers.RuntimeInfo: which runtime runs the container's tasks, with its options. */
export interface ContainerRuntime {
  /** `io.containerd.runc.v2`, or an absolute path to a shim binary. Required. */
  readonly name: string;
  /** The runtime's options (`containerd.runc.v1.Options` for runc), as the client sent them. */
  readonly options?: AnyValue;
}

/**
 * containerd's containers.Container, plus the revision of each extension (berth's own, not on containerd's wire).
 * `spec` holds the OCI runtime spec: type URL `types.containerd.io/opencontainers/runtime-spec/1/Spec`, value its JSON.
 */
export interface Container {
  readonly id: string;
  readonly labels: Labels;
  /** The image name it was made from; '' for none. */
  readonly image: string;
  readonly runtime: ContainerRuntime;
  readonly spec?: AnyValue;
  /** The snapshotter and key of its root filesystem; '' for none. */
  readonly snapshotter: string;
  readonly snapshotKey: string;
  /** By type URL (the map key is the extension's name; containerd keeps the Any's own type URL beside it). */
  readonly extensions: Readonly<Record<string, AnyValue>>;
  /**
   * Per extension name, the revision of its current value: 1 for the first write, +1 for every write that changes
   * it (through Containers.Update or the extensions service alike). Revisions never go back: deleting an extension
   * and setting it again continues the count.
   */
  readonly extensionRevisions: Readonly<Record<string, number>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What a create or update supplies; the store sets times and revisions. */
export interface ContainerInput {
  readonly id: string;
  readonly labels?: Labels;
  readonly image?: string;
  readonly runtime?: ContainerRuntime;
  readonly spec?: AnyValue;
  readonly snapshotter?: string;
  readonly snapshotKey?: string;
  readonly extensions?: Readonly<Record<string, AnyValue>>;
}

/** One extension's value and revision (what the extensions service reads and writes). */
export interface ExtensionValue {
  readonly value: AnyValue;
  readonly revision: number;
}

/** Optimistic concurrency: when set, the write applies only if the extension's current revision is this (0 = absent). */
export interface ExtensionWriteOptions {
  readonly expectedRevision?: number;
}

/**
 * containerd's containers.Store, per namespace, with berth's extension operations. Errors are errdefs: NotFound,
 * AlreadyExists, InvalidArgument (bad id, missing runtime name, a label over 4096 bytes naming the label, an
 * unknown or immutable field path, an extension a contributed policy refuses), FailedPrecondition for a stale
 * `expectedRevision` (the message carries the current revision), and Conflict never (containerd has no such code).
 * Containers are garbage-collection roots for their snapshot (in their snapshotter) and, by label, what
 * `containerd.io/gc.ref.*` labels name.
 */
export interface ContainerStore {
  get(ctx: OpContext, id: string): Promise<Container>;
  /**
   * Every container matching any of the filters: containerd's syntax over `id`, `image`, `runtime.name`,
   * `labels.<k>`, `snapshotter`, `snapshotkey`; and `extensions.<name>.<json path>` conditions, which are
   * answered from the index the extension policies declare (never by scanning every container).
   * Must not hold the event loop for long whatever the filter (time-sliced, as images and content are).
   */
  list(ctx: OpContext, filters?: readonly string[]): Promise<Container[]>;
  create(ctx: OpContext, container: ContainerInput): Promise<Container>;
  /**
   * Field paths exactly as containerd 1.6's metadata/containers.go takes them: `labels`, `labels.<k>`, `spec`,
   * `extensions`, `extensions.<name>`, `image`, `snapshotkey`; any other is InvalidArgument. With none, every
   * field is replaced and a changed snapshotter or runtime name is InvalidArgument ("immutable"). Create and update
   * refuse a missing runtime name, a missing spec, a snapshot key without a snapshotter and an empty extension
   * name, as containerd does. Extensions that change get revision + 1.
   */
  update(ctx: OpContext, container: ContainerInput, fieldpaths?: readonly string[]): Promise<Container>;
  delete(ctx: OpContext, id: string): Promise<void>;

  /** NotFound when the container or the extension is absent. */
  getExtension(ctx: OpContext, id: string, name: string): Promise<ExtensionValue>;
  /** Sets (creates or replaces) one extension atomically; returns the new revision. */
  putExtension(ctx: OpContext, id: string, name: string, value: AnyValue, options?: ExtensionWriteOptions): Promise<ExtensionValue>;
  /**
   * Reads, transforms and writes one extension in one transaction (JSON Merge Patch lives in the caller's
   * function); `current` is undefined when absent. Returning undefined deletes it.
   */
  modifyExtension(
    ctx: OpContext,
    id: string,
    name: string,
    change: (current: ExtensionValue | undefined) => AnyValue | undefined,
    options?: ExtensionWriteOptions,
  ): Promise<ExtensionValue | undefined>;
  deleteExtension(ctx: OpContext, id: string, name: string, options?: ExtensionWriteOptions): Promise<void>;
  /** Every stored value of one extension name, across namespaces (schema compatibility checks). */
  scanExtension(name: string): AsyncIterable<{ readonly namespace: string; readonly id: string; readonly value: AnyValue }>;
}

/** One indexed term of a stored extension: a JSON path (dot-separated) and its scalar value as a string. */
export interface ExtensionTerm {
  readonly path: string;
  readonly value: string;
}

/**
 * What an extensions plugin (io.berth.extensions.v1) contributes to the containers store through
 * `containerExtensionsPoint`. The store calls these inside its write transaction, so they are synchronous and
 * must be quick; they never reach back into the store.
 */
export interface ContainerExtensionPolicy {
  /**
   * Throws InvalidArgumentError (every error with its JSON pointer) when `value` may not be stored under `name`.
   * Extensions with no schema pass untouched unless the policy demands registration.
   */
  validate(namespace: string, containerId: string, name: string, value: AnyValue): void;
  /** The index terms of one stored value (only the paths declared as indexed for `name`); [] for none. */
  terms(name: string, value: AnyValue): readonly ExtensionTerm[];
  /** The indexed paths of `name` (a query on another path of that name is InvalidArgument). */
  indexedPaths(name: string): readonly string[];
  /** Called with an extension name when its indexed paths change: the store re-indexes that name's values. */
  onIndexChange(listener: (name: string) => void): () => void;
}

/** A JSON Schema registered for one extension name (type URL), with the paths to index. */
export interface ExtensionSchema {
  readonly name: string;
  /** The schema document (draft 2020-12). */
  readonly schema: Readonly<Record<string, unknown>>;
  /** Monotonic per name: 1 for the first registration. */
  readonly version: number;
  readonly indexedPaths: readonly string[];
  readonly source: 'config' | 'api';
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** The extension schema registry (the json extensions plugin provides it; the extensions service serves it). */
export interface ExtensionSchemaRegistry {
  get(name: string): ExtensionSchema;
  list(): ExtensionSchema[];
  /**
   * Registers or replaces a schema. A replacement must accept every document in `existing` (the stored values of
   * that name: `ContainerStore.scanExtension`'s items, whose namespace and id the refusal names, or bare values)
   * unless `force`; otherwise FailedPrecondition naming the first documents it would refuse. A schema that does
   * not compile is InvalidArgument with ajv's errors.
   */
  register(
    input: { readonly name: string; readonly schema: Readonly<Record<string, unknown>>; readonly indexedPaths?: readonly string[] },
    options?: {
      readonly force?: boolean;
      readonly existing?: AsyncIterable<AnyValue | { readonly namespace: string; readonly id: string; readonly value: AnyValue }>;
    },
  ): Promise<ExtensionSchema>;
  delete(name: string): Promise<void>;
}

/** Topics the containers and extensions services publish. */
export const ContainerTopics = {
  create: '/containers/create',
  update: '/containers/update',
  delete: '/containers/delete',
  extensionUpdate: '/containers/extensions/update',
} as const;

/** The type URL containerd uses for an OCI runtime spec held in `Container.spec`. */
export const OCI_SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
