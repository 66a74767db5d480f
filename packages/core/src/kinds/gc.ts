/** What one garbage collection did. */
export interface GCStats {
  readonly startedAt: Date;
  readonly durationMs: number;
  readonly removed: { readonly content: number; readonly ingests: number; readonly snapshots: number; readonly leases: number };
}

/** Something whose unreferenced resources can be collected (the metadata store). */
export interface GarbageCollectable {
  /** Mark and sweep once; safe against concurrent writes. */
  garbageCollect(): Promise<GCStats>;
  /** Called after every mutation that may have made something collectable (`delete`) or added data (`write`). */
  onMutation(listener: (kind: 'delete' | 'write') => void): () => void;
}

/** The scheduler that decides when collection runs (containerd's gc.scheduler). */
export interface GarbageCollector {
  /** Asks for a collection soon; returns at once. */
  schedule(): void;
  /** Runs (or joins) a collection and returns when it is done. */
  scheduleAndWait(): Promise<GCStats>;
  readonly lastRun?: GCStats;
}
