// One layer, inside a worker: compressed bytes arrive from the main thread, are hashed (the layer digest) and fed to a
// decompressor (a spawned igzip/pigz/zstd, or zlib); what comes out is hashed (the diff ID) and parsed, and every
// entry is applied with synchronous fs calls, in order, as each decompressed chunk arrives. The worker's own event
// loop interleaves those chunks with the input, so the tool decompresses on another core while the fs work runs here.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { LayerWriter } from '../apply/layer-writer.js';
import { LayerError } from '../apply/errors.js';
import type { Tool } from '../decompressors.js';
import { sniff, type Codec } from '../media-types.js';
import { TarReader } from '../tar/reader.js';
import type { ApplyJob, ApplyResult, FromWorker, ToWorker } from './protocol.js';
import { serializeError } from './protocol.js';

/** What the tar side of the pipeline is fed: decompressed bytes, in order. */
type Sink = (chunk: Buffer) => void;

interface Decompressor {
  readonly name: string;
  write(chunk: Buffer): Promise<void>;
  /** All output delivered and the tool exited cleanly. */
  end(): Promise<void>;
  kill(): void;
}

export async function runApply(job: ApplyJob): Promise<void> {
  const port = job.port;
  const send = (m: FromWorker) => port.postMessage(m);
  const layerHash = createHash('sha256');
  let layerBytes = 0;
  const tarHash = createHash('sha256');
  let tarBytes = 0;
  const writer = new LayerWriter(job.target);
  const reader = new TarReader(writer);
  let failure: unknown;
  let decompressor: Decompressor | undefined;
  let cancelled = false;

  const fail = (err: unknown) => {
    if (failure !== undefined) return;
    failure = err;
    writer.abort();
    decompressor?.kill();
  };
  const onTar: Sink = (chunk) => {
    if (failure !== undefined) return;
    tarHash.update(chunk);
    tarBytes += chunk.length;
    if (reader.ended) return; // trailing bytes after the end of the archive: hashed, as containerd does
    try {
      reader.push(chunk);
    } catch (err) {
      fail(err);
    }
  };

  // Input from the main thread, processed strictly in order.
  let queue = Promise.resolve();
  let settle: () => void;
  const finished = new Promise<void>((resolve) => (settle = resolve));
  port.on('message', (m: ToWorker) => {
    if ('cancel' in m) {
      cancelled = true;
      fail(new LayerError('cancelled', 'apply cancelled'));
      settle();
      return;
    }
    if ('data' in m) {
      const chunk = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
      queue = queue.then(async () => {
        layerHash.update(chunk);
        layerBytes += chunk.length;
        if (failure === undefined) {
          try {
            decompressor ??= start(job, chunk, onTar, fail);
            await decompressor.write(chunk);
          } catch (err) {
            fail(err);
          }
        }
        send({ ack: chunk.length });
      });
    } else if ('end' in m) {
      queue = queue.then(async () => {
        if (failure === undefined) {
          try {
            decompressor ??= start(job, Buffer.alloc(0), onTar, fail);
            await decompressor.end();
          } catch (err) {
            fail(err);
          }
        }
        settle();
      });
    }
  });
  await finished;
  port.removeAllListeners('message');
  if (cancelled) {
    decompressor?.kill();
    send({ error: serializeError(new LayerError('cancelled', 'apply cancelled')) });
    return;
  }

  // The layer's own digest comes first: bytes that are not the layer explain any other failure.
  const layerDigest = `sha256:${layerHash.digest('hex')}`;
  if (layerDigest !== job.digest || (job.size > 0 && layerBytes !== job.size)) {
    writer.abort();
    const what = layerDigest !== job.digest ? `its bytes hash to ${layerDigest}` : `it has ${layerBytes} bytes, not ${job.size}`;
    send({ error: serializeError(new LayerError('data-loss', `layer ${job.digest} is corrupt: ${what}`)) });
    return;
  }
  if (failure === undefined) {
    try {
      reader.finish();
      writer.finish();
    } catch (err) {
      fail(err);
    }
  }
  if (failure !== undefined) {
    send({ error: serializeError(describe(failure, job)) });
    return;
  }
  const result: ApplyResult = { digest: `sha256:${tarHash.digest('hex')}`, size: tarBytes, stats: writer.stats, decompressor: decompressor!.name };
  send({ done: result });
}

/** The error with the layer named (the entry name is already in the message of a layer error). */
function describe(err: unknown, job: ApplyJob): unknown {
  if (err instanceof Error && !(err as { system?: unknown }).system) {
    err.message = `apply layer ${job.digest}: ${err.message}`;
  }
  return err;
}

/** Picks the decompressor from the job's compression and, where containerd sniffs, the stream's first bytes. */
function start(job: ApplyJob, head: Buffer, sink: Sink, fail: (err: unknown) => void): Decompressor {
  const codec: Codec = job.compression === 'none' ? 'none' : sniff(head);
  switch (codec) {
    case 'none':
      return passthrough(sink);
    case 'gzip':
      return job.gzip ? spawned(job.gzip, sink, fail) : zlibGunzip(sink, fail);
    case 'zstd':
      if (!job.zstd) throw new LayerError('not-implemented', 'zstd layers need the zstd program (apt-get install zstd)');
      return spawned(job.zstd, sink, fail);
  }
}

function passthrough(sink: Sink): Decompressor {
  return {
    name: 'none',
    write: async (chunk) => sink(chunk),
    end: async () => undefined,
    kill: () => undefined,
  };
}

/** Writes to a stream, waiting for 'drain' when its buffer is full. */
async function writeTo(stream: Writable, chunk: Buffer): Promise<void> {
  if (chunk.length === 0) return;
  if (!stream.write(chunk)) await once(stream, 'drain');
}

function spawned(tool: Tool, sink: Sink, fail: (err: unknown) => void): Decompressor {
  const name = tool.file.split('/').pop()!;
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(tool.file, [...tool.args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let spawnError: Error | undefined;
  let killed = false;
  child.on('error', (err) => {
    spawnError ??= new LayerError('unknown', `cannot run ${tool.file}: ${err.message}`, { cause: err });
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  child.stdout.on('data', sink);
  // EPIPE when the tool exits early (bad input): its exit status says why.
  child.stdin.on('error', () => undefined);
  const closed = new Promise<number | null>((resolve) => child.once('close', (code, signal) => resolve(signal ? null : code)));
  const failure = (code: number | null) => spawnError ?? toolError(name, code, stderr);
  // A tool that dies while input is still coming stops the apply at once.
  void closed.then((code) => {
    if (!killed && code !== 0) fail(failure(code));
  });
  return {
    name,
    async write(chunk) {
      if (spawnError) throw spawnError;
      if (child.exitCode !== null || child.stdin.destroyed) return;
      await Promise.race([writeTo(child.stdin, chunk), closed]);
    },
    async end() {
      child.stdin.end();
      const code = await closed;
      if (code !== 0) throw failure(code);
    },
    kill() {
      killed = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

function toolError(name: string, code: number | null, stderr: string): LayerError {
  const said = stderr.trim().split('\n').filter(Boolean).pop() ?? '';
  return new LayerError('invalid-argument', `${name} -dc failed (${code === null ? 'killed' : `exit ${code}`})${said ? `: ${said}` : ''}`);
}

function zlibGunzip(sink: Sink, fail: (err: unknown) => void): Decompressor {
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  gunzip.on('data', sink);
  const ended = new Promise<void>((resolve, reject) => {
    gunzip.once('end', resolve);
    gunzip.once('error', (err) => {
      const e = new LayerError('invalid-argument', `gzip: ${err.message}`, { cause: err });
      fail(e);
      reject(e);
    });
  });
  ended.catch(() => undefined);
  return {
    name: 'zlib',
    write: (chunk) => Promise.race([writeTo(gunzip, chunk), ended]),
    async end() {
      gunzip.end();
      await ended;
    },
    kill: () => gunzip.destroy(),
  };
}
