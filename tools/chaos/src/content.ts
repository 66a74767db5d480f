// Content through the wire, the way containerd's client writes it (Content.Write: WRITE pieces, then COMMIT with
// the expected digest and the labels), plus hashing helpers for the checks.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ServiceNames } from '@berth/api';
import type { RawGrpc } from './raw-grpc.js';

import { sha256Digest as sha256 } from '@berth/core';

export { sha256 };

const PIECE = 1 << 20;

export interface WriteOptions {
  readonly namespace?: string;
  readonly lease?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** Leave the ingest open (no COMMIT). */
  readonly commit?: boolean;
  readonly timeoutMs?: number;
}

/** Writes `data` under `ref` and commits it; resolves with its digest once the daemon acknowledged the commit. */
export async function writeBlob(g: RawGrpc, ref: string, data: Buffer, options: WriteOptions = {}): Promise<string> {
  const digest = sha256(data);
  const requests: object[] = [];
  for (let offset = 0; offset < data.length || offset === 0; offset += PIECE) {
    requests.push({ action: 'WRITE', ref, offset, data: data.subarray(offset, offset + PIECE), total: data.length, expected: digest });
    if (data.length === 0) break;
  }
  if (options.commit !== false) {
    requests.push({ action: 'COMMIT', ref, offset: data.length, total: data.length, expected: digest, labels: options.labels ?? {} });
  }
  const responses = await g.stream<{ action: string; digest: string }>(ServiceNames.Content, 'Write', requests, {
    namespace: options.namespace,
    lease: options.lease,
    timeoutMs: options.timeoutMs,
  });
  if (options.commit !== false && responses.at(-1)?.action !== 'COMMIT') throw new Error(`write ${ref}: no commit acknowledged`);
  return digest;
}

/** The digest of a file's bytes, streamed. */
export function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(`sha256:${hash.digest('hex')}`));
  });
}
