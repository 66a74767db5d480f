import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const tool = fileURLToPath(new URL('../../../tools/gen-api.mjs', import.meta.url));
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function check(args: string[]): Promise<number> {
  try {
    await run(process.execPath, [tool, ...args]);
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

describe('tools/gen-api.mjs', () => {
  it('finds src/generated/types.ts up to date with the protos', async () => {
    expect(await check(['--check'])).toBe(0);
  });

  it('reports a stale or missing file and regenerates it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-gen-api-'));
    dirs.push(dir);
    const file = join(dir, 'types.ts');
    expect(await check(['--check', '--file', file])).toBe(1);
    await writeFile(file, '// stale\n');
    expect(await check(['--check', '--file', file])).toBe(1);
    expect(await check(['--file', file])).toBe(0);
    expect(await check(['--check', '--file', file])).toBe(0);
  });
});

describe('the generated descriptor', () => {
  it('resolves each field lazily to what a full resolution gives (presence, packing, defaults, type)', async () => {
    const { loadProtoRoot, newDescriptorRoot } = await import('./proto-root.js');
    const protobuf = (await import('protobufjs')).default;
    const full = loadProtoRoot();
    // A fresh lazy Root: the shared one may have been resolved by another test of this file.
    const lazy = newDescriptorRoot();
    const types: protobuf.Type[] = [];
    const walk = (ns: protobuf.NamespaceBase) => {
      for (const n of ns.nestedArray) {
        if (n instanceof protobuf.Type) types.push(n);
        if (n instanceof protobuf.Namespace || n instanceof protobuf.Type) walk(n);
      }
    };
    walk(full);
    expect(types.length).toBeGreaterThan(100);
    for (const t of types) {
      const other = lazy.lookupType(t.fullName);
      for (const f of t.fieldsArray) {
        const g = other.fields[f.name]!.resolve();
        // Defaults as text: a message field's default is an object graph not worth comparing deeply.
        const shape = (x: protobuf.Field) => [x.fullName, Boolean(x.hasPresence), x.packed, String(x.defaultValue), x.resolvedType?.fullName];
        expect(shape(g)).toEqual(shape(f));
      }
    }
  });

  it('describes the same services and messages as the .proto files', async () => {
    const { loadProtoRoot, protoRoot } = await import('./proto-root.js');
    const fromText = loadProtoRoot();
    fromText.resolveAll();
    const fromDescriptor = protoRoot();
    fromDescriptor.resolveAll();
    expect(JSON.stringify(fromDescriptor.toJSON())).toBe(JSON.stringify(fromText.toJSON()));
  });
});
