// Phase a: every method berthd serves, over gRPC and over ttrpc, gets malformed protobuf (wire.ts) and
// valid-but-hostile requests (corpus.ts). Each answer must be an error of containerd's code (gRPC unmarshal
// failures are codes.Internal in grpc-go; ttrpc answers Internal for a bad payload and InvalidArgument for a bad
// envelope), a refused request must change nothing (state snapshot and events), and the daemon must stay up.
import { allServiceNames, messageCodec, serviceMethods, ServiceNames, StatusCode, type ServiceMethod } from '@berth/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { corpusFor, NAMESPACED, NAMESPACED_METHODS, READ_ONLY, type Expectation } from '../src/corpus.js';
import { hasCtr, PhaseDaemon } from '../src/daemon.js';
import { codeName, RawGrpc, type CallCode } from '../src/raw-grpc.js';
import { RawTtrpc } from '../src/raw-ttrpc.js';
import { buildFixture, describeChange, snapshot, wipe, type Fixture } from '../src/state.js';
import { newRow, writeRow } from '../src/summary.js';
import { bytesField, malformations, unknownField } from '../src/wire.js';

const MiB = 1 << 20;
/** Every corpus call answers in milliseconds; one that takes this long was left unanswered. */
const CALL_TIMEOUT_MS = 3000;
/** Shims serve the task service; the ttrpc events service is not on the gRPC socket. */
const NOT_ON_GRPC = new Set<string>([ServiceNames.ShimTask, ServiceNames.TtrpcEvents]);
const GRPC_SERVICES = allServiceNames().filter((s) => !NOT_ON_GRPC.has(s));
const short = (service: string) => service.split('.').at(-1)!;

type Code = CallCode | 'none';

describe.skipIf(!hasCtr())('a: malformed input', () => {
  const row = newRow('a', 'malformed input');
  const seen = new Map<string, number>();
  let phase: PhaseDaemon;
  let g: RawGrpc;
  let fx: Fixture;
  let pristine = '';
  let events = 0;
  let subscription: { cancel(): void } | undefined;
  const grpcServed = new Map<string, ServiceMethod[]>();
  const ttrpcServed: { service: string; method: ServiceMethod }[] = [];

  const connect = () => {
    subscription?.cancel();
    g?.close();
    g = new RawGrpc(phase.address, { namespace: 'chaos', timeoutMs: CALL_TIMEOUT_MS });
    subscription = g.open(ServiceNames.Events, 'Subscribe', { filters: [] }, () => events++, { namespace: null });
  };

  /** The state; a connection that stopped answering is replaced once (see judge). */
  const settle = async () => {
    try {
      return await snapshot(g);
    } catch {
      connect();
      return snapshot(g);
    }
  };

  const rebuild = async () => {
    await wipe(g);
    fx = await buildFixture(g);
    pristine = await settle();
    events = 0;
  };

  beforeAll(async () => {
    phase = await PhaseDaemon.start();
    row.rssBeforeMiB = phase.memory()?.rssMiB;
    connect();
    await rebuild();
    // Served methods: an empty request without namespace is answered by the handler (an error, mostly); a method
    // grpc-js has no handler for says so.
    for (const service of GRPC_SERVICES) {
      for (const m of serviceMethods(service)) {
        const res = await g.send(service, m.name, [Buffer.alloc(0)], { namespace: null, openMs: m.responseStream ? 200 : undefined });
        const unserved = res.code === StatusCode.UNIMPLEMENTED && /does not implement the method/.test(res.details);
        if (!unserved) grpcServed.set(service, [...(grpcServed.get(service) ?? []), m]);
      }
    }
    // On ttrpc, an unknown service or method is answered `service X` / `method X` (Unimplemented), as containerd's.
    const tt = await RawTtrpc.connect(phase.ttrpcAddress);
    for (const service of allServiceNames()) {
      const methods = serviceMethods(service);
      if (methods.some((m) => m.requestStream || m.responseStream)) continue; // not servable over ttrpc 1.1
      for (const m of methods) {
        const ans = await tt.frame(RawTtrpc.envelope(service, m.name, Buffer.alloc(0)));
        const unserved = ans.code === StatusCode.UNIMPLEMENTED && /^(service|method) /.test(ans.message);
        if (!unserved) ttrpcServed.push({ service, method: m });
      }
    }
    tt.close();
    await rebuild();
    phase.stall.reset();
  });

  afterAll(async () => {
    row.stallMs = phase?.worstStallMs();
    row.rssAfterMiB = phase?.memory()?.rssMiB;
    await new Promise((r) => setTimeout(r, 2000));
    row.rssIdleMiB = phase?.memory()?.rssMiB;
    row.hwmMiB = phase?.peakRssMiB();
    const served = [...grpcServed].map(([s, ms]) => `${short(s)} ${ms.length}`).join(', ');
    row.notes.push(`served on gRPC: ${served}; on ttrpc: ${ttrpcServed.map((t) => `${short(t.service)}.${t.method.name}`).join(', ') || 'nothing'}`);
    row.notes.push(`codes: ${[...seen].map(([c, n]) => `${c} ${n}`).join(', ')}`);
    writeRow(inject('chaosResultsDir'), row);
    subscription?.cancel();
    g?.close();
    await phase?.dispose();
  });

  /**
   * Counts one case; returns what is wrong with its outcome. A refused case must have changed nothing (`compare`:
   * the method can change state; read-only methods skip the comparison).
   */
  const judge = async (what: string, code: Code, details: string, expectation: Expectation, compare = true, partial = false): Promise<string[]> => {
    row.cases++;
    const name = code === 'none' ? 'NO ANSWER' : codeName(code);
    seen.set(name, (seen.get(name) ?? 0) + 1);
    const failures: string[] = [];
    const accepted = code === StatusCode.OK || code === 'open';
    const got = `${name}${details ? ` (${details.slice(0, 160)})` : ''}`;
    if (typeof expectation === 'object' && code !== expectation.code) failures.push(`${what}: expected ${codeName(expectation.code)}, got ${got}`);
    if (expectation === 'error' && (accepted || code === 'none')) failures.push(`${what}: accepted (${got}) where containerd refuses`);
    // A call left unanswered can leave its HTTP/2 connection unusable (a status too large to send): start afresh.
    if (code === StatusCode.DEADLINE_EXCEEDED) connect();
    if (!compare) {
      if (process.env.CHAOS_DEBUG) process.stderr.write(`[a] ${what}: ${got}\n`);
      return failures;
    }
    const after = await settle().catch((err: Error) => `unreadable: ${err.message}`);
    const changed = after !== pristine || events > 0;
    if (changed && !accepted && !partial) {
      const how = after.startsWith('unreadable') ? after : describeChange(pristine, after);
      failures.push(`${what}: answered ${name} but acted on (${events} events; ${how})`);
    }
    if (changed) await rebuild().catch((err: Error) => failures.push(`${what}: the fixture could not be rebuilt: ${err.message}`));
    if (process.env.CHAOS_DEBUG) process.stderr.write(`[a] ${what}: ${got}${changed ? ' (changed state)' : ''}\n`);
    return failures;
  };

  /** Liveness after a batch; a dead or stuck daemon is a failure, restarted so the rest still runs. */
  const stillUp = async (after: string): Promise<string[]> => {
    if (await phase.responsive()) return [];
    await phase.restart();
    connect();
    await rebuild();
    return [`daemon down or stuck after ${after}`];
  };

  async function attackGrpc(service: string, m: ServiceMethod, first: boolean): Promise<string[]> {
    const corpus = corpusFor(service, m.name, fx) ?? { valid: {}, hostile: [] };
    const namespaced = NAMESPACED.has(service) || NAMESPACED_METHODS.has(`${service}/${m.name}`);
    const codec = messageCodec(m.requestType);
    const valid = codec.encode(corpus.valid);
    const send = (messages: readonly Buffer[], namespace?: string | null) =>
      g.send(service, m.name, messages, { namespace, openMs: m.responseStream ? 300 : undefined });
    const compare = !READ_ONLY.has(`${service}/${m.name}`);
    const failures: string[] = [];
    const judged = async (what: string, messages: readonly Buffer[], expectation: Expectation, namespace?: string | null, partial = false) => {
      const res = await send(messages, namespace);
      failures.push(...(await judge(`${m.name}: ${what}`, res.code, res.details, expectation, compare, partial)));
    };
    for (const mal of malformations(m.requestType, valid)) await judged(mal.name, [mal.bytes], { code: StatusCode.INTERNAL });
    // Limits of the server, not of a method: tried on the first method of each service.
    if (first) {
      // Over the receive limit (16 MiB, as containerd's default): refused before decoding.
      await judged('17 MiB message', [Buffer.concat([valid, bytesField(unknownField(m.requestType), Buffer.alloc(17 * MiB, 0x61))])], { code: StatusCode.RESOURCE_EXHAUSTED });
    }
    if (namespaced) {
      await judged('no namespace', [valid], { code: StatusCode.FAILED_PRECONDITION }, null);
      await judged('invalid namespace', [valid], { code: StatusCode.INVALID_ARGUMENT }, 'Bad Name!');
      if (first) await judged('huge namespace', [valid], { code: StatusCode.INVALID_ARGUMENT }, 'a'.repeat(64 * 1024));
    }
    for (const h of corpus.hostile) await judged(h.name, h.messages.map((x) => codec.encode(x)), h.expect, h.namespace, h.partial);
    return failures;
  }

  for (const service of GRPC_SERVICES) {
    it(`gRPC ${short(service)}: every served method refuses malformed and hostile requests and acts on none`, async (ctx) => {
      const methods = grpcServed.get(service) ?? [];
      if (methods.length === 0) {
        row.notes.push(`${short(service)}: not served, skipped`);
        ctx.skip();
      }
      const failures: string[] = [];
      for (const [i, m] of methods.entries()) {
        if (!corpusFor(service, m.name, fx)) row.notes.push(`${short(service)}.${m.name}: no hand-written corpus entry (schema-made malformations only)`);
        failures.push(...(await attackGrpc(service, m, i === 0)));
        failures.push(...(await stillUp(`${short(service)}.${m.name}`)));
      }
      row.failures += failures.length;
      expect(failures, failures.join('\n')).toEqual([]);
    });
  }

  it('ttrpc: every served method refuses malformed payloads and hostile requests and acts on none', async () => {
    expect(ttrpcServed.length, 'berthd serves containerd.services.events.ttrpc.v1.Events on ttrpc').toBeGreaterThan(0);
    const failures: string[] = [];
    for (const { service, method: m } of ttrpcServed) {
      const corpus = corpusFor(service, m.name, fx) ?? { valid: {}, hostile: [] };
      const codec = messageCodec(m.requestType);
      const tt = await RawTtrpc.connect(phase.ttrpcAddress);
      const judged = async (what: string, payload: Buffer, expectation: Expectation) => {
        const ans = await tt.frame(RawTtrpc.envelope(service, m.name, payload));
        failures.push(...(await judge(`ttrpc ${m.name}: ${what}`, ans.code, ans.message, expectation)));
      };
      try {
        for (const mal of malformations(m.requestType, codec.encode(corpus.valid))) await judged(mal.name, mal.bytes, { code: StatusCode.INTERNAL });
        for (const h of corpus.hostile) await judged(h.name, codec.encode(h.messages[0]), h.expect);
      } finally {
        tt.close();
      }
      failures.push(...(await stillUp(`ttrpc ${short(service)}.${m.name}`)));
    }
    row.failures += failures.length;
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('ttrpc: malformed envelopes and frames are refused, acted on by nobody, and the connection survives', async () => {
    const target = ttrpcServed[0];
    expect(target, 'a served ttrpc method').toBeDefined();
    const { service, method: m } = target!;
    const payload = messageCodec(m.requestType).encode(corpusFor(service, m.name, fx)?.valid ?? {});
    const envelope = RawTtrpc.envelope(service, m.name, payload);
    const failures: string[] = [];
    const tt = await RawTtrpc.connect(phase.ttrpcAddress);
    // A request to a method nobody serves proves the connection is still read and answered.
    const alive = async (what: string) => {
      const ans = await tt.frame(RawTtrpc.envelope('chaos.Nothing', 'Ping', Buffer.alloc(0)));
      if (ans.code !== StatusCode.UNIMPLEMENTED) failures.push(`ttrpc connection unusable after ${what}: ${ans.code} ${ans.message}`);
    };
    try {
      for (const mal of malformations('ttrpc.Request', envelope)) {
        const ans = await tt.frame(mal.bytes);
        failures.push(...(await judge(`ttrpc envelope: ${mal.name}`, ans.code, ans.message, { code: StatusCode.INVALID_ARGUMENT })));
      }
      await alive('malformed envelopes');
      const even = await tt.frame(envelope, { streamId: 2 });
      failures.push(...(await judge('ttrpc: even stream id', even.code, even.message, { code: StatusCode.INVALID_ARGUMENT })));
      // Frames of an unknown type are ignored (ttrpc's forward compatibility): no answer, no action.
      const unknownType = await tt.frame(envelope, { type: 9, waitMs: 300 });
      if (unknownType.code !== 'none') failures.push(`ttrpc: a frame of unknown type was answered (${unknownType.code})`);
      failures.push(...(await judge('ttrpc: unknown frame type', unknownType.code, unknownType.message, 'any')));
      await alive('a frame of unknown type');
      // Over the 4 MiB frame limit: ResourceExhausted, and the bytes are skipped.
      const big = Buffer.concat([envelope, bytesField(unknownField('ttrpc.Request'), Buffer.alloc(5 * MiB, 0x61))]);
      const oversized = await tt.frame(big);
      failures.push(...(await judge('ttrpc: 5 MiB frame', oversized.code, oversized.message, { code: StatusCode.RESOURCE_EXHAUSTED })));
      await alive('an oversized frame');
    } finally {
      tt.close();
    }
    // A connection that ends in the middle of a frame.
    const cut = await RawTtrpc.connect(phase.ttrpcAddress);
    cut.write(Buffer.concat([Buffer.from([0, 0, 0, 100, 0, 0, 0, 1, 1, 0]), Buffer.alloc(10)]));
    cut.close();
    row.cases++;
    failures.push(...(await stillUp('ttrpc envelopes and frames')));
    row.failures += failures.length;
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
