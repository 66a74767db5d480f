// Issue 10 with the real containerd 1.6 Go client (test/go/containers, built offline from Debian's source): a Go
// integration stores its metadata as a container extension holding a JSON-encoded struct registered with typeurl
// (`containerd.WithContainerExtension`), reads it back with `Container.Extensions()` and decodes it through the
// same registry, replaces it with `Container.Update`, and deletes the container; against a schema registered for
// the extension's name (the extensions-json plugin's config file) a violating value is refused with
// InvalidArgument naming the field, and the stored value is kept; the client's plain List filter queries the indexed
// field. `ctr containers info` shows what berth stored.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goProgram, runGo, skipWithoutGo, type GoFailure } from './go-client.js';
import { expectOk, hasCtr, startBerthd, type Berthd } from './harness.js';

const NAME = 'acme.io/ownership';

interface Ownership {
  readonly team: string;
  readonly tier: number;
  readonly oncall?: readonly string[];
  readonly note?: string;
}

interface ContainerOut {
  readonly id: string;
  readonly image: string;
  readonly runtime: string;
  readonly labels: Record<string, string> | null;
  readonly specTypeUrl: string;
  readonly extensions: Record<string, { typeUrl: string; value: string; decoded?: Ownership; decodeError?: string }>;
}

type Out = Partial<ContainerOut & GoFailure & { ids: string[]; deleted: string; version: string; uuid: string; namespaces: string[] }>;

/** A schema for the extension's name: the team a slug, the tier 1-3, on-call a list of e-mail addresses. */
const SCHEMA = {
  name: NAME,
  schema: {
    type: 'object',
    required: ['team', 'tier'],
    properties: {
      team: { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
      tier: { type: 'integer', minimum: 1, maximum: 3 },
      oncall: { type: 'array', items: { type: 'string', format: 'email' } },
      note: { type: 'string' },
    },
  },
  indexed_paths: ['team'],
};

describe.skipIf(skipWithoutGo() || !hasCtr())('the containerd Go client: containers with JSON extensions', () => {
  let daemon: Berthd | undefined;
  let dir: string | undefined;
  let bin: string;
  const ns = `go-containers-${process.pid}`;
  const go = (args: readonly string[]) => runGo<Out>(bin, daemon!.address, ns, args);

  beforeAll(async () => {
    bin = await goProgram('containers');
    dir = await mkdtemp(join(tmpdir(), 'berth-go-containers-'));
    // The schema through the extensions plugin's config file.
    const file = join(dir, 'ownership.schema.json');
    await writeFile(file, JSON.stringify(SCHEMA));
    daemon = await startBerthd({ dir, logLevel: 'warn', config: `[plugins."io.berth.extensions.v1.json"]\nschemas = ["${file}"]` });
  }, 20 * 60_000);
  afterAll(async () => {
    await daemon?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("connects as containerd's client does: Version, Server (uuid), Namespaces.Create and List", async () => {
    const r = await go(['version']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json?.version).toMatch(/\S/);
    expect(r.json?.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(r.json?.namespaces).toContain(ns);
    const labels = expectOk(await daemon!.ctr(['namespaces', 'ls']), 'ctr namespaces ls').stdout;
    expect(labels).toMatch(new RegExp(`^${ns}\\s+created-by=go\\s*$`, 'm'));
  });

  it('creates a container with WithContainerExtension, reads it back through Extensions(), updates it and deletes it', async () => {
    // Go's encoding/json escapes <, > and & (\u003c ...): the stored bytes must decode to the same struct.
    const first: Ownership = { team: 'payments', tier: 2, oncall: ['ana@example.com'], note: 'owns <checkout> & refunds' };
    const created = await go(['create', 'c1', JSON.stringify(first), 'app=shop']);
    expect(created.code, created.stdout + created.stderr).toBe(0);
    expect(created.json?.runtime).toBe('io.containerd.runc.v2');
    expect(created.json?.specTypeUrl).toBe('types.containerd.io/opencontainers/runtime-spec/1/Spec');
    expect(created.json?.labels).toEqual({ app: 'shop' });

    const got = await go(['get', 'c1']);
    expect(got.code, got.stdout + got.stderr).toBe(0);
    const ext = got.json?.extensions?.[NAME];
    // The type URL exactly as typeurl.Register made it (no type.googleapis.com/ prefix), decoded by the client.
    expect(ext?.typeUrl).toBe(NAME);
    expect(ext?.decodeError).toBeUndefined();
    expect(ext?.decoded).toEqual(first);
    expect(JSON.parse(ext!.value)).toEqual(first);
    expect(Object.keys(got.json?.extensions ?? {})).toEqual([NAME]);

    // ctr shows what berth stores: the Any with its type URL and the JSON bytes (base64 in ctr's JSON).
    const info = expectOk(await daemon!.ctr(['containers', 'info', 'c1'], { namespace: ns }), 'ctr containers info');
    const shown = (JSON.parse(info.stdout) as { Extensions: Record<string, { type_url: string; value: string }> }).Extensions[NAME];
    expect(shown?.type_url).toBe(NAME);
    expect(JSON.parse(Buffer.from(shown!.value, 'base64').toString('utf8'))).toEqual(first);

    // Container.Update with the extension replaced (a full update: the Go client sends no field mask).
    const second: Ownership = { team: 'search', tier: 1 };
    const updated = await go(['update', 'c1', JSON.stringify(second)]);
    expect(updated.code, updated.stdout + updated.stderr).toBe(0);
    const after = await go(['get', 'c1']);
    expect(after.json?.extensions?.[NAME]?.decoded).toEqual(second);
    expect(after.json?.labels).toEqual({ app: 'shop' });

    const listed = await go(['list', 'labels.app==shop']);
    expect(listed.code, listed.stdout + listed.stderr).toBe(0);
    expect(listed.json?.ids).toEqual(['c1']);

    const deleted = await go(['delete', 'c1']);
    expect(deleted.code, deleted.stdout + deleted.stderr).toBe(0);
    const gone = await go(['get', 'c1']);
    expect(gone.code).toBe(3);
    expect(gone.json?.errdef).toBe('not-found');
  });

  it('a value the registered schema refuses is InvalidArgument naming the field, on create and on update, and nothing is lost', async () => {
    const bad = await go(['create', 'c2', JSON.stringify({ team: 'payments', tier: 7 })]);
    expect(bad.code, bad.stdout + bad.stderr).toBe(3);
    expect(bad.json?.errdef, bad.stdout).toBe('invalid-argument');
    expect(bad.json?.error).toContain('/tier');
    expect((await go(['get', 'c2'])).json?.errdef).toBe('not-found');

    const good: Ownership = { team: 'payments', tier: 3 };
    expect((await go(['create', 'c3', JSON.stringify(good)])).code).toBe(0);
    const violating = JSON.stringify({ team: 'Not A Slug', tier: 2, oncall: ['nobody'] });
    const refused = await go(['store-update', 'c3', violating]);
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    expect(refused.json?.errdef, refused.stdout).toBe('invalid-argument');
    // Every error with its JSON pointer.
    expect(refused.json?.error).toContain('/team');
    expect(refused.json?.error).toContain('/oncall/0');
    // Container.Update runs errdefs.FromGRPC twice (containerd 1.6's container.go), so the Go client classifies any
    // refusal as Unknown there; berth's InvalidArgument is still in the message.
    const viaContainer = await go(['update', 'c3', violating]);
    expect(viaContainer.code, viaContainer.stdout + viaContainer.stderr).toBe(3);
    expect(viaContainer.json?.error).toMatch(/\/team: .*invalid argument: unknown$/);
    const kept = await go(['get', 'c3']);
    expect(kept.json?.extensions?.[NAME]?.decoded).toEqual(good);
    expect((await go(['delete', 'c3'])).code).toBe(0);
  });

  it("the Go client's plain Containers.List filter queries an indexed extension field", async () => {
    expect((await go(['create', 'q1', JSON.stringify({ team: 'payments', tier: 1 })])).code).toBe(0);
    expect((await go(['create', 'q2', JSON.stringify({ team: 'search', tier: 1 })])).code).toBe(0);
    expect((await go(['create', 'q3', JSON.stringify({ team: 'payments', tier: 2 })])).code).toBe(0);
    const listed = await go(['list', `extensions."${NAME}".team==payments`]);
    expect(listed.code, listed.stdout + listed.stderr).toBe(0);
    expect([...listed.json!.ids!].sort()).toEqual(['q1', 'q3']);
    for (const id of ['q1', 'q2', 'q3']) expect((await go(['delete', id])).code).toBe(0);
  });
});
