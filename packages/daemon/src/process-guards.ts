import type { Logger } from '@berth/core';

/** How long the best-effort shutdown after an uncaught exception may take before the process exits anyway. */
const FATAL_SHUTDOWN_MS = 5000;

export interface ProcessGuardOptions {
  readonly log: Logger;
  /** Stops the daemon if it is running (undefined before it started). */
  readonly stop: () => Promise<void> | undefined;
  readonly exit?: (code: number) => void;
}

function describe(reason: unknown): { error: string; stack?: string } {
  if (reason instanceof Error) return { error: reason.message, stack: reason.stack };
  return { error: typeof reason === 'string' ? reason : (JSON.stringify(reason) ?? String(reason)) };
}

/**
 * What berthd does with an error that reaches the event loop unhandled (docs/architecture.md, "Unexpected
 * errors"):
 * - an unhandled rejection is a missing handler: the operation that rejected has already unwound, nothing was
 *   left half-done by the rejection itself, so it is logged at error level with its stack and berthd keeps serving;
 * - an uncaught exception may have interrupted code between two steps that belong together, and Node does not
 *   promise a usable state after one: it is logged with its stack, the daemon stops (best effort, bounded), and the
 *   process exits 1 so that a supervisor restarts it.
 */
export function installProcessGuards(options: ProcessGuardOptions): void {
  const { log } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let dying = false;
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled promise rejection (a missing error handler); berthd keeps serving', describe(reason));
  });
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception; berthd shuts down and exits 1', describe(err));
    if (dying) return exit(1);
    dying = true;
    const timer = setTimeout(() => {
      log.error('shutdown after an uncaught exception did not finish in time; exiting');
      exit(1);
    }, FATAL_SHUTDOWN_MS);
    // Cannot reject: every failure inside is caught and logged, and the process exits either way.
    void (async () => {
      try {
        await options.stop();
      } catch (stopErr) {
        log.error('shutdown after an uncaught exception failed', describe(stopErr));
      } finally {
        clearTimeout(timer);
        exit(1);
      }
    })();
  });
}
