import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachStdio, createFifoSet, followWindowSize, forwardSignals, removeFifos } from './index.js';

const sh = promisify(execFile);

function sink(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  }) as Writable & { text(): string };
  w.text = () => Buffer.concat(chunks).toString();
  return w;
}

describe('FIFO sets (cio.NewFIFOSetInDir)', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-fifo-test-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('makes a private dir with <id>-stdin/-stdout/-stderr FIFOs; no stderr with a terminal; close removes it', async () => {
    const set = await createFifoSet(join(root, 'fifo'), 'c1');
    expect((await stat(join(root, 'fifo'))).mode & 0o777).toBe(0o700);
    expect((await stat(set.dir)).mode & 0o777).toBe(0o700);
    expect([set.stdin, set.stdout, set.stderr]).toEqual([join(set.dir, 'c1-stdin'), join(set.dir, 'c1-stdout'), join(set.dir, 'c1-stderr')]);
    for (const p of [set.stdin, set.stdout, set.stderr]) expect((await stat(p)).isFIFO()).toBe(true);
    const tty = await createFifoSet(join(root, 'fifo'), 'c1', { terminal: true });
    expect(tty.dir).not.toBe(set.dir);
    expect(tty.stderr).toBe('');
    expect((await readdir(tty.dir)).sort()).toEqual(['c1-stdin', 'c1-stdout']);
    await set.close();
    await set.close();
    await tty.close();
    expect(await readdir(join(root, 'fifo'))).toEqual([]);
  });

  it('refuses an id that would escape the directory', async () => {
    await expect(createFifoSet(root, '../x')).rejects.toMatchObject({ errdef: 'invalid-argument' });
    await expect(createFifoSet(root, '')).rejects.toMatchObject({ errdef: 'invalid-argument' });
  });

  it('removeFifos removes only FIFOs, then their directory if empty', async () => {
    const a = await createFifoSet(root, 'a');
    await removeFifos([a.stdin, a.stdout, a.stderr]);
    await expect(stat(a.dir)).rejects.toMatchObject({ code: 'ENOENT' });
    const b = await createFifoSet(root, 'b');
    const file = join(b.dir, 'b-keep');
    await writeFile(file, 'data');
    await removeFifos([b.stdout, file, '']);
    expect((await readdir(b.dir)).sort()).toEqual(['b-keep', 'b-stderr', 'b-stdin']);
  });
});

describe('attachStdio (cio copyIO)', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-attach-test-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('copies what a writer that opens later puts in stdout and stderr, until it closes them', async () => {
    const set = await createFifoSet(root, 'p', { stdin: false });
    const out = sink();
    const err = sink();
    const att = await attachStdio(set, { stdout: out, stderr: err });
    // Nothing has the write ends yet: the copy must wait, not see EOF.
    await new Promise((r) => setTimeout(r, 100));
    await sh('sh', ['-c', `sleep 0.1; echo hello > ${set.stdout} & echo oops > ${set.stderr}; wait`]);
    await att.output;
    expect(out.text()).toBe('hello\n');
    expect(err.text()).toBe('oops\n');
    await att.close();
    await set.close();
  });

  it('writes stdin into the FIFO and calls closeStdin once it ended', async () => {
    const set = await createFifoSet(root, 'p');
    const input = new PassThrough();
    let closed = 0;
    // The reader stands for the shim, which holds the FIFO once Create returned (`ready`): without it, a writer
    // closed before a slow-starting reader opened would take the data with it.
    const reader = sh('sh', ['-c', `head -c 11 < ${set.stdin}`]);
    const att = await attachStdio(set, { stdin: input, stdout: sink(), stderr: sink() }, { closeStdin: async () => void closed++, ready: reader });
    input.write('hello ');
    input.end('world');
    expect((await reader).stdout).toBe('hello world');
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(1);
    await att.close();
    await set.close();
  });

  it('keeps what stdin gave until the reader opens (ready), even when stdin ended before', async () => {
    const set = await createFifoSet(root, 'p');
    let opened!: () => void;
    const ready = new Promise<void>((r) => (opened = r));
    const att = await attachStdio(set, { stdin: Readable.from([Buffer.from('early data')]), stdout: sink(), stderr: sink() }, { ready });
    // stdin has ended long before anyone reads the FIFO.
    await new Promise((r) => setTimeout(r, 200));
    const reader = sh('sh', ['-c', `head -c 10 < ${set.stdin}`]);
    await new Promise((r) => setTimeout(r, 100));
    opened();
    expect((await reader).stdout).toBe('early data');
    await att.close();
    await set.close();
  });

  it('holds no thread for FIFOs nobody opens: more unopened attachments than libuv has pool threads leave file I/O working', async () => {
    const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const sets = await Promise.all(Array.from({ length: pool + 2 }, (_, i) => createFifoSet(root, `idle${i}`)));
    const atts = await Promise.all(sets.map((set) => attachStdio(set, { stdin: new PassThrough(), stdout: sink(), stderr: sink() })));
    try {
      const answer = await Promise.race([
        stat(root).then(() => 'answered'),
        new Promise<string>((r) => setTimeout(() => r('starved'), 5000).unref()),
      ]);
      expect(answer).toBe('answered');
      // And each still copies once its writer comes.
      await sh('sh', ['-c', `echo late > ${sets[0]!.stdout}; : > ${sets[0]!.stderr}`]);
      await atts[0]!.output;
    } finally {
      await Promise.all(atts.map((a) => a.close()));
      await Promise.all(sets.map((s) => s.close()));
    }
  });

  it('close() unblocks FIFOs nobody ever opened (a failed Create) and the output settles', async () => {
    const set = await createFifoSet(root, 'p');
    const att = await attachStdio(set, { stdin: new PassThrough(), stdout: sink(), stderr: sink() });
    const started = Date.now();
    await att.close();
    await att.output;
    expect(Date.now() - started).toBeLessThan(5000);
    await set.close();
  });
});

describe('window size and signals', () => {
  it('resizes now and on every resize event, until stopped', async () => {
    const tty = Object.assign(new EventEmitter(), { columns: 80, rows: 24 });
    const sizes: string[] = [];
    const stop = followWindowSize(tty, async (s) => void sizes.push(`${s.width}x${s.height}`));
    tty.columns = 120;
    tty.rows = 40;
    tty.emit('resize');
    stop();
    tty.emit('resize');
    expect(sizes).toEqual(['80x24', '120x40']);
  });

  it('forwards a signal sent to this process as its number', async () => {
    const got: number[] = [];
    const stop = forwardSignals(async (n) => void got.push(n), ['SIGUSR2']);
    try {
      process.kill(process.pid, 'SIGUSR2');
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      stop();
    }
    expect(got).toEqual([12]);
  });
});
