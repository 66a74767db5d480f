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
