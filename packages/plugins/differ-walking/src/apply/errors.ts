// Errors of the apply and compare workers. They carry an `errdef` string, which @berth/core's predicates and the
// daemon's status mapping read, so the workers need not import core (about 300 ms to load in every worker).

export type WorkerErrdef = 'invalid-argument' | 'failed-precondition' | 'not-implemented' | 'data-loss' | 'cancelled' | 'unknown';

export class LayerError extends Error {
  constructor(
    readonly errdef: WorkerErrdef,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'LayerError';
  }
}

/** A layer that breaks the rules (an escaping path, a write through a symlink): containerd's "invalid argument". */
export const invalidLayer = (message: string, options?: ErrorOptions) => new LayerError('invalid-argument', message, options);
