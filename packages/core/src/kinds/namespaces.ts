import type { Labels } from './context.js';

export interface NamespaceStore {
  /** AlreadyExistsError when present; InvalidArgumentError for a bad name or label. */
  create(name: string, labels?: Labels): Promise<void>;
  /** NotFoundError when absent. */
  labels(name: string): Promise<Labels>;
  list(): Promise<string[]>;
  /**
   * Applies an update in one transaction and returns the resulting labels. Paths `labels` (replace all) or
   * `labels.<key>` (set, or delete when `labels[key]` is absent or ''); no paths = replace all labels.
   */
  update(name: string, labels: Labels, fieldpaths?: readonly string[]): Promise<Labels>;
  /** NotFoundError when absent; FailedPreconditionError when anything still lives in it. */
  delete(name: string): Promise<void>;
}
