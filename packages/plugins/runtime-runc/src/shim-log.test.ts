import { constants, openSync, closeSync, writeSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogFields, Logger } from '@berth/core';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ShimLog, logrusLevel } from './shim-log.js';

function recordingLogger(lines: { level: string; fields?: LogFields }[]): Logger {
  const at = (level: string) => (_msg: string, fields?: LogFields) => void lines.push({ level, ...(fields ? { fields } : {}) });
  const log: Logger = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

const until = async (check: () => boolean) => {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('logrusLevel', () => {
  it.each([
    ['time="2026-12-01T10:00:00Z" level=info msg="starting signal loop"', 'info'],
    ['time="x" level=warning msg="cleanup warnings"', 'warn'],
    ['level=error msg=boom', 'error'],
    ['level=fatal msg=boom', 'error'],
    ['level=debug msg="event forwarded"', 'debug'],
    ['level="debug" msg=x', 'debug'],
    ['panic: runtime error: invalid memory address', 'info'],
  ])('%s -> %s', (line, level) => {
    expect(logrusLevel(line)).toBe(level);
  });
});

describe('ShimLog', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-shimlog-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the FIFO, drains it line by line at logrus levels, and never blocks the writer', async () => {
    const lines: { level: string; fields?: LogFields }[] = [];
    const path = join(dir, 'log');
    const log = await ShimLog.open(path, recordingLogger(lines));
    try {
      expect((await stat(path)).isFIFO()).toBe(true);
      // The shim opens it O_WRONLY (blocking): that open succeeds only because the reader holds it.
      const fd = openSync(path, constants.O_WRONLY);
      writeSync(fd, 'level=info msg=one\nlevel=warning msg=tw');
      writeSync(fd, 'o\n\n');
      closeSync(fd);
      await until(() => lines.length === 2);
      expect(lines).toEqual([
        { level: 'info', fields: { shim_log: 'level=info msg=one' } },
        { level: 'warn', fields: { shim_log: 'level=warning msg=two' } },
      ]);
    } finally {
      log.close();
    }
  });

  it('reopens an existing FIFO without re-creating it (a surviving shim still writes to that inode)', async () => {
    const path = join(dir, 'log');
    const first = await ShimLog.open(path, recordingLogger([]));
    const inode = (await stat(path)).ino;
    first.close();
    const lines: { level: string; fields?: LogFields }[] = [];
    const second = await ShimLog.open(path, recordingLogger(lines));
    try {
      expect((await stat(path)).ino).toBe(inode);
      const fd = openSync(path, constants.O_WRONLY);
      writeSync(fd, 'level=error msg=after-restart\n');
      closeSync(fd);
      await until(() => lines.length === 1);
      expect(lines[0]).toEqual({ level: 'error', fields: { shim_log: 'level=error msg=after-restart' } });
    } finally {
      second.close();
    }
  });

  it('refuses a log path that is not a FIFO', async () => {
    const path = join(dir, 'log');
    await writeFile(path, 'x');
    await expectFailure(ShimLog.open(path, recordingLogger([])), 'failed-precondition', 'not a FIFO');
  });
});
