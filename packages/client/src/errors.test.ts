import { describe, expect, it } from 'vitest';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  AlreadyExistsError,
  CancelledError,
  ConflictError,
  DataLossError,
  errdefOf,
  isNotFound,
  NotFoundError,
  UnknownError,
  wireMessageOf,
} from '@berth/core';
import { fromGrpc, isServiceError, rebaseMessage } from './errors.js';

/** The object grpc-js builds for a failed call (call.ts callErrorFromStatus). */
function serviceError(code: status, details: string, errdef?: string): ServiceError {
  const metadata = new Metadata();
  if (errdef !== undefined) metadata.set('berth-errdef', errdef);
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}

describe('fromGrpc', () => {
  it('maps gRPC codes like containerd FromGRPC and strips the class suffix', () => {
    const err = fromGrpc(serviceError(status.NOT_FOUND, 'namespace "x": not found'));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe('namespace "x"');
    expect(wireMessageOf(err)).toBe('namespace "x": not found');
    expect(isNotFound(err)).toBe(true);
  });

  it('prefers the berth-errdef trailer over the code', () => {
    const wire = serviceError(status.FAILED_PRECONDITION, 'lease "l" is in use: conflict', 'conflict');
    const err = fromGrpc(wire);
    expect(err).toBeInstanceOf(ConflictError);
    expect(errdefOf(err)).toBe('conflict');
    expect((err as Error).message).toBe('lease "l" is in use');
    expect((err as Error).cause).toBe(wire);
  });

  it('falls back to the code when the trailer names no errdef', () => {
    expect(errdefOf(fromGrpc(serviceError(status.ALREADY_EXISTS, 'content sha256:ab: already exists', 'bogus')))).toBe('already-exists');
  });

  it('covers codes containerd folds into unknown', () => {
    expect(fromGrpc(serviceError(status.DATA_LOSS, 'digest mismatch'))).toBeInstanceOf(DataLossError);
    expect(fromGrpc(serviceError(status.CANCELLED, 'Cancelled on client'))).toBeInstanceOf(CancelledError);
    expect(fromGrpc(serviceError(status.UNKNOWN, 'boom: unknown'))).toBeInstanceOf(UnknownError);
    expect((fromGrpc(serviceError(status.UNKNOWN, 'boom: unknown')) as Error).message).toBe('boom: unknown');
  });

  it('keeps a bare class message as the class', () => {
    const err = fromGrpc(serviceError(status.ALREADY_EXISTS, 'already exists'));
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect((err as Error).message).toBe('');
    expect(wireMessageOf(err)).toBe('already exists');
  });

  it('passes through what is not a ServiceError', () => {
    const plain = new Error('plain');
    expect(fromGrpc(plain)).toBe(plain);
    expect(fromGrpc('text')).toBe('text');
    expect(isServiceError(plain)).toBe(false);
  });
});

describe('rebaseMessage', () => {
  it('strips only the suffix of the class', () => {
    expect(rebaseMessage('not-found', 'x: not found')).toBe('x');
    expect(rebaseMessage('not-found', 'x: already exists')).toBe('x: already exists');
    expect(rebaseMessage('not-found', 'xnot found')).toBe('xnot found');
    expect(rebaseMessage('out-of-range', 'write @1 must occur at current offset 0')).toBe('write @1 must occur at current offset 0');
  });
});
