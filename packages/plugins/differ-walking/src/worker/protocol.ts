// Messages between the differ (main thread) and its workers. A job arrives on the worker's parentPort with a
// MessagePort of its own, over which its bytes stream with credit-based flow control (the sender keeps at most a
// window of chunks unacknowledged, so neither side buffers a layer in memory).
import type { MessagePort } from 'node:worker_threads';
import type { Tool } from '../decompressors.js';
import type { ApplyStats, LayerTarget } from '../apply/layer-writer.js';
import type { Compression } from '../media-types.js';

export interface ApplyJob {
  readonly kind: 'apply';
  readonly port: MessagePort;
  readonly target: LayerTarget;
  readonly compression: Compression;
  readonly gzip: Tool | undefined;
  readonly zstd: Tool | undefined;
  /** The layer's digest and size: the compressed bytes are checked against them as they stream. */
  readonly digest: string;
  readonly size: number;
}

export interface CompareJob {
  readonly kind: 'compare';
  readonly port: MessagePort;
  readonly lower: string;
  readonly upper: string;
  /** gzip level (zlib, in the worker), or undefined for a plain tar. */
  readonly gzipLevel: number | undefined;
  /** Whiteout times (seconds), as containerd's ChangeWriter stamps them: when the diff started. */
  readonly whiteoutTime: number;
}

export type Job = ApplyJob | CompareJob;

/** Main to worker, on a job's port. */
export type ToWorker = { readonly data: Uint8Array } | { readonly end: true } | { readonly cancel: true } | { readonly ack: number };

export interface ApplyResult {
  /** sha256 of the uncompressed stream (the diff ID) and its length. */
  readonly digest: string;
  readonly size: number;
  readonly stats: ApplyStats;
  /** Which decompressor ran: 'igzip', 'pigz', 'zstd', 'zlib' or 'none'. */
  readonly decompressor: string;
}

export interface CompareResult {
  /** sha256 and length of the uncompressed tar. */
  readonly tarDigest: string;
  readonly tarSize: number;
  readonly entries: number;
}

export interface SerializedError {
  readonly errdef?: string;
  readonly message: string;
  /** A system call's error (ENOSPC, EACCES, ...): rebuilt as one so it is worded as containerd words it. */
  readonly system?: { code: string; errno: number; syscall: string; path?: string; dest?: string };
}

/** Worker to main, on a job's port. */
export type FromWorker =
  | { readonly ack: number }
  | { readonly data: Uint8Array }
  | { readonly done: ApplyResult | CompareResult }
  | { readonly error: SerializedError };

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as Error & { errdef?: unknown; code?: unknown; errno?: unknown; syscall?: unknown; path?: unknown; dest?: unknown };
  if (typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.errno === 'number' && typeof e.syscall === 'string') {
    return {
      message: e.message,
      ...(typeof e.errdef === 'string' ? { errdef: e.errdef } : {}),
      system: {
        code: e.code,
        errno: e.errno,
        syscall: e.syscall,
        ...(typeof e.path === 'string' ? { path: e.path } : {}),
        ...(typeof e.dest === 'string' ? { dest: e.dest } : {}),
      },
    };
  }
  return { message: e.message, ...(typeof e.errdef === 'string' ? { errdef: e.errdef } : {}) };
}
