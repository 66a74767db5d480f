// One row per phase, written by each phase's test file and printed as one table by the global teardown.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PhaseRow {
  /** Sorts the table: 'a' … 'f'. */
  readonly key: string;
  readonly phase: string;
  cases: number;
  failures: number;
  /** Worst latency the stall probe saw during the phase, in ms. */
  stallMs?: number;
  /** Acknowledged items not found afterwards. */
  lost?: number;
  rssBeforeMiB?: number;
  rssAfterMiB?: number;
  /** Peak RSS (VmHWM) of the phase's daemons. */
  hwmMiB?: number;
  /** RSS after the phase's work and a short idle. */
  rssIdleMiB?: number;
  readonly notes: string[];
}

export function newRow(key: string, phase: string): PhaseRow {
  return { key, phase, cases: 0, failures: 0, notes: [] };
}

export function writeRow(dir: string, row: PhaseRow): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${row.key}.json`), JSON.stringify(row));
}

export function readRows(dir: string): PhaseRow[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')) as PhaseRow).sort((a, b) => a.key.localeCompare(b.key));
}

const fmt = (v: number | undefined, unit = '') => (v === undefined ? '-' : `${v}${unit}`);

export function renderTable(rows: readonly PhaseRow[]): string {
  const header = ['phase', 'cases', 'failures', 'worst stall', 'lost', 'RSS before → after (idle), MiB', 'peak'];
  const body = rows.map((r) => [
    `${r.key} ${r.phase}`,
    String(r.cases),
    String(r.failures),
    fmt(r.stallMs, ' ms'),
    fmt(r.lost),
    `${fmt(r.rssBeforeMiB)} → ${fmt(r.rssAfterMiB)}${r.rssIdleMiB !== undefined ? ` (${r.rssIdleMiB})` : ''}`,
    fmt(r.hwmMiB),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)];
  for (const r of rows) for (const note of r.notes) out.push(`  ${r.key}: ${note}`);
  return out.join('\n');
}
