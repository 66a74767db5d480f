// Reading exposition text the way Prometheus does: a real text-format parser, and Debian's promtool as the strict
// checker (tools/setup.sh installs the `prometheus` package for it).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface ParsedSample {
  readonly value?: string;
  readonly labels?: Record<string, string>;
  readonly buckets?: Record<string, string>;
  readonly count?: string;
  readonly sum?: string;
}

export interface ParsedFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  readonly metrics: readonly ParsedSample[];
}

const parser = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

/** The families of `text`, by name; throws on text the parser refuses. */
export function parseExposition(text: string): Map<string, ParsedFamily> {
  return new Map(parser(text).map((f) => [f.name, f]));
}

/** The value of the one sample of `family` whose labels include `labels` (undefined: none; throws: several). */
export function sampleValue(families: Map<string, ParsedFamily>, family: string, labels: Record<string, string> = {}): number | undefined {
  const matching = (families.get(family)?.metrics ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (matching.length > 1) throw new Error(`${family}${JSON.stringify(labels)} matches ${matching.length} samples`);
  const m = matching[0];
  if (!m) return undefined;
  return Number(m.value ?? m.count);
}

export const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';
export const hasPromtool = (): boolean => existsSync(PROMTOOL);

/** `promtool check metrics` on `text`: its exit code and what it printed (lint problems, parse errors). */
export function promtoolCheck(text: string): { code: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}
