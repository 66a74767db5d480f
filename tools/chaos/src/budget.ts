// How long and how hard the suite attacks, from the environment (tools/chaos/run.mjs sets these from its flags).
// CI runs the defaults, which keep the whole suite within a few minutes on a 2-core machine.

const num = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${raw}: not a non-negative number`);
  return value;
};

export const budget = {
  /** Seconds the SIGKILL loop may run (phase b); cycles stop when it is spent. */
  killSeconds: num('CHAOS_KILL_SECONDS', 45),
  /** Upper bound on SIGKILL cycles (0: only the time bound). */
  cycles: num('CHAOS_CYCLES', 0),
  /** Seed of the workload's random choices (default: one per run, printed in the summary for a replay). */
  seed: process.env.CHAOS_SEED ? num('CHAOS_SEED', 0) : undefined,
  /** The longest event-loop stall the ReDoS phase tolerates. */
  stallMs: num('CHAOS_STALL_MS', 250),
  /** How long a ReDoS case may take before the daemon is declared stuck and killed. */
  stuckMs: num('CHAOS_STUCK_MS', 4000),
  /** Connections of the burst phase, and how many are opened at once. */
  burstTotal: num('CHAOS_BURST_TOTAL', 2000),
  burstConcurrency: num('CHAOS_BURST_CONCURRENCY', 200),
  /** Size of the tmpfs of the disk-full phase. */
  tmpfsMiB: num('CHAOS_TMPFS_MIB', 64),
};
