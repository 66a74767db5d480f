// Resident memory of a process from /proc/<pid>/status: VmRSS now, VmHWM the peak so far.
import { readFileSync } from 'node:fs';

export interface Memory {
  readonly rssMiB: number;
  readonly hwmMiB: number;
}

export function memoryOf(pid: number): Memory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssMiB: Math.round(kib('VmRSS') / 102.4) / 10, hwmMiB: Math.round(kib('VmHWM') / 102.4) / 10 };
}
