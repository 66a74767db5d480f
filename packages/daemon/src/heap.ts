// V8's heap settings for a long-lived daemon. Node's defaults suit short programs that allocate fast: the young
// generation may grow to 3 x 16 MiB, and once grown it stays resident. berthd allocates in bursts (a request, a
// blob chunk) and idles in between, so a 1 MiB semi-space keeps it tens of MiB smaller at no measured cost to
// throughput (tools/bench; docs/performance.md). V8 reads these flags only at start, so berthd applies them by
// replacing itself (execve, same pid) when it was started without them.
import { execve } from '@berth/sys';

export const HEAP_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/** Set to 1 to keep the flags Node was started with (a supervisor that passes its own). */
export const NO_REEXEC_ENV = 'BERTHD_NO_REEXEC';

/** Subcommands that exit at once gain nothing from a tuned heap. */
const SHORT_LIVED = new Set(['config', '-v', '--version', '-h', '--help', 'help']);

/**
 * Re-executes berthd with HEAP_FLAGS unless it already runs with a semi-space setting (given by berthd's bin, the
 * systemd unit, or the operator), was told not to, or runs a short-lived subcommand. Returns when nothing was done
 * or the re-exec was impossible (no FFI): the daemon then runs with Node's defaults.
 */
export function applyHeapFlags(argv: readonly string[] = process.argv, env: NodeJS.ProcessEnv = process.env): void {
  if (env[NO_REEXEC_ENV] === '1') return;
  if (process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) return;
  if (argv.slice(2).some((a) => SHORT_LIVED.has(a))) return;
  try {
    execve(process.execPath, [process.execPath, ...HEAP_FLAGS, ...process.execArgv, ...argv.slice(1)], env);
  } catch {
    // Without FFI the daemon runs with Node's defaults; memory use is higher, nothing else changes.
  }
}
