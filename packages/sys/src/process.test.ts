import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ffiStatus } from './binding.js';
import { mallocTrim } from './process.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe.skipIf(!ffiStatus().loaded)('process', () => {
  it('execve replaces the process in place: same pid, new V8 flags, stdout and stderr still connected', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-sys-exec-'));
    try {
      const script = join(dir, 'child.mjs');
      writeFileSync(
        script,
        `import { execve } from ${JSON.stringify(dist)};
if (!process.execArgv.includes('--max-semi-space-size=1')) {
  process.stdout.write('before ' + process.pid + '\\n');
  execve(process.execPath, [process.execPath, '--max-semi-space-size=1', ...process.argv.slice(1)]);
}
process.stdout.write('after ' + process.pid + ' ' + process.argv.slice(2).join(',') + '\\n');
process.stderr.write('stderr still works\\n');
`,
      );
      const res = spawnSync(process.execPath, [script, 'a', 'b'], { encoding: 'utf8', timeout: 20_000 });
      expect(res.status, res.stderr).toBe(0);
      const [before, after] = res.stdout.trim().split('\n');
      const pid = before!.split(' ')[1];
      expect(after).toBe(`after ${pid} a,b`);
      expect(res.stderr).toBe('stderr still works\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('mallocTrim gives freed heap back and answers whether it did', () => {
    const keep: Buffer[] = [];
    for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(1 << 20, i));
    keep.length = 0;
    expect(typeof mallocTrim()).toBe('boolean');
  });
});
