import type { ContentStore } from './content.js';
import type { GarbageCollectable } from './gc.js';
import type { LeaseManager } from './leases.js';
import type { NamespaceStore } from './namespaces.js';

/**
 * The metadata plugin: one transactional store for everything namespaced. Its `content` is the namespaced view
 * over the content plugin (a blob is visible in a namespace only once written or committed there).
 */
export interface MetadataStore extends GarbageCollectable {
  readonly namespaces: NamespaceStore;
  readonly content: ContentStore;
  readonly leases: LeaseManager;
}
