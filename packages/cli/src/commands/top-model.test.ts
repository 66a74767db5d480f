import { messageCodec } from '@berth/api';
import { describe, expect, it } from 'vitest';
import { decodeStats, exactJson, exactStats, metricRows, omitEmpty, V1_TYPE_URL, V2_TYPE_URL } from './metrics.js';
import { rowsOf, sampleOf, sortRows, type TaskSample } from './top-model.js';
import { topTable } from './top.js';

const v1 = (cpuNs: number, usage: number, readBytes: number) => ({
  typeUrl: V1_TYPE_URL,
  value: messageCodec(V1_TYPE_URL).encode({
    pids: { current: 3, limit: 0 },
    cpu: { usage: { total: cpuNs, per_cpu: [cpuNs - 10, 10] } },
    memory: { usage: { usage, limit: 9223372036854771712 }, total_inactive_file: 1000, total_cache: 2000 },
    blkio: { io_service_bytes_recursive: [{ op: 'Read', major: 254, value: readBytes }, { op: 'Write', major: 254, value: 7 }, { op: 'Total', major: 254, value: readBytes + 7 }] },
  }),
});

describe('berth top figures', () => {
  it('reads v1 and v2 statistics into samples (working set, no limit above 2^62)', () => {
    expect(sampleOf('a', 1000, decodeStats(v1(5e9, 11000, 100)))).toEqual({ id: 'a', at: 1000, cpuNs: 5e9, memory: 10000, pids: 3, readBytes: 100, writeBytes: 7 });
    const v2 = {
      typeUrl: V2_TYPE_URL,
      value: messageCodec(V2_TYPE_URL).encode({
        pids: { current: 2 },
        cpu: { usage_usec: 1500 },
        memory: { usage: 8192, usage_limit: 65536, inactive_file: 192 },
        io: { usage: [{ major: 8, rbytes: 10, wbytes: 20 }, { major: 9, rbytes: 1, wbytes: 2 }] },
      }),
    };
    expect(sampleOf('b', 0, decodeStats(v2))).toEqual({ id: 'b', at: 0, cpuNs: 1_500_000, memory: 8000, limit: 65536, pids: 2, readBytes: 11, writeBytes: 22 });
    expect(() => decodeStats({ typeUrl: 'io.containerd.windows.Statistics', value: Buffer.alloc(0) })).toThrow(/cannot read metrics of type/);
  });

  it('turns two samples into CPU % of one CPU and I/O rates, and sorts them', () => {
    const s = (id: string, at: number, cpuNs: number, memory: number, readBytes: number): TaskSample => ({ id, at, cpuNs, memory, pids: 1, readBytes, writeBytes: 0 });
    const before = new Map([['busy', s('busy', 0, 0, 10, 0)], ['idle', s('idle', 0, 0, 500, 0)]]);
    const rows = rowsOf(before, [s('busy', 2000, 1.5e9, 10, 4096), s('idle', 2000, 2e7, 500, 0), s('new', 2000, 1e9, 1, 0)]);
    expect(rows[0]).toMatchObject({ id: 'busy', cpuPercent: 75, readRate: 2048, writeRate: 0 });
    expect(rows[1]!.cpuPercent).toBeCloseTo(1);
    // A task seen for the first time has no rates yet.
    expect(rows[2]).toEqual({ id: 'new', memory: 1, pids: 1 });
    expect(sortRows(rows, 'cpu').map((r) => r.id)).toEqual(['busy', 'idle', 'new']);
    expect(sortRows(rows, 'mem').map((r) => r.id)).toEqual(['idle', 'busy', 'new']);
    expect(sortRows(rows, 'id', true).map((r) => r.id)).toEqual(['new', 'idle', 'busy']);
    expect(sortRows(rows, 'io').map((r) => r.id)).toEqual(['busy', 'idle', 'new']);
    const table = topTable(sortRows(rows, 'cpu'));
    expect(table.split('\n')[0]).toMatch(/^CONTAINER\s{3,}CPU %\s{3,}MEM USAGE \/ LIMIT\s{3,}MEM %\s{3,}PIDS\s{3,}READ\/s\s{3,}WRITE\/s$/);
    expect(table).toMatch(/busy\s+75\.00%\s+10\.0 B \/ unlimited\s+-\s+1\s+2\.0 KiB\/s\s+0\.0 B\/s/);
    expect(table).toMatch(/new\s+-\s+1\.0 B \/ unlimited\s+-\s+1\s+-\s+-/);
  });

  it("prints ctr's METRIC rows and Go-like JSON", () => {
    const stats = exactStats(v1(123, 4096, 0));
    expect(metricRows(stats)).toEqual([
      ['METRIC', 'VALUE'],
      ['memory.usage_in_bytes', '4096'],
      ['memory.limit_in_bytes', '9223372036854771712'],
      ['memory.stat.cache', '2000'],
      ['cpuacct.usage', '123'],
      ['cpuacct.usage_percpu', '[113 10]'],
      ['pids.current', '3'],
      ['pids.limit', '0'],
    ]);
    const json = JSON.parse(exactJson(omitEmpty(stats.metrics))) as Record<string, any>;
    expect(json.pids).toEqual({ current: 3 });
    expect(json.hugetlb).toBeUndefined();
    expect(json.cpu.usage).toEqual({ total: 123, per_cpu: [113, 10] });
    // Every digit of a uint64, as Go prints it (a double would say 9223372036854772000).
    expect(exactJson(omitEmpty(stats.metrics))).toContain('"limit": 9223372036854771712');
    const max = exactStats({ typeUrl: V2_TYPE_URL, value: messageCodec(V2_TYPE_URL).encode({ memory: { usage_limit: '18446744073709551615' as unknown as number } }) });
    expect(metricRows(max)).toContainEqual(['memory.usage_limit', '18446744073709551615']);
  });
});
