import { describe, expect, it } from 'vitest';
import {
  AlreadyExistsError,
  errdefOf,
  errorFromErrdef,
  isCancelled,
  isNotFound,
  NotFoundError,
  wireMessageOf,
} from './errdefs.js';

describe('errdefs', () => {
  it('classifies along the cause chain and inside AggregateErrors', () => {
    const inner = new NotFoundError('blob sha256:x');
    expect(isNotFound(new Error('wrapped', { cause: inner }))).toBe(true);
    expect(errdefOf(new AggregateError([new Error('x'), new AlreadyExistsError('y')]))).toBe('already-exists');
    expect(errdefOf(new Error('plain'))).toBe('unknown');
  });

  it('treats AbortError as cancelled', () => {
    const controller = new AbortController();
    controller.abort();
    expect(isCancelled(controller.signal.reason)).toBe(true);
  });

  it('ends wire messages with containerd suffixes exactly once', () => {
    expect(wireMessageOf(new NotFoundError('namespace "x"'))).toBe('namespace "x": not found');
    expect(wireMessageOf(new NotFoundError('namespace "x": not found'))).toBe('namespace "x": not found');
    expect(wireMessageOf(new Error('boom'))).toBe('boom');
  });

  it('rebuilds a class from its errdef string', () => {
    const err = errorFromErrdef('already-exists', 'image "a": already exists');
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect(errorFromErrdef('nonsense', 'm').errdef).toBe('unknown');
  });
});
