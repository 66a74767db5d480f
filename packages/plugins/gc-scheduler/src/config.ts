/**
 * The `[plugins."io.containerd.gc.v1.scheduler"]` section, with containerd's keys and defaults
 * (gc/scheduler/scheduler.go).
 */
import type { JSONSchemaType } from '@berth/core';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import type { GcSchedulerOptions } from './scheduler.js';

export interface GcSchedulerConfig {
  /** Largest share of real time that scheduled collections may pause for (clamped to 0..0.5). */
  pause_threshold: number;
  /** Deletions since the last collection that schedule one at once; 0: deletions wait for the next tick. */
  deletion_threshold: number;
  /** Mutations since the last collection that make the next tick collect; 0: only deletions and triggers do. */
  mutation_threshold: number;
  /** Delay (Go duration) before a triggered or threshold-driven collection. */
  schedule_delay: string;
  /** Delay (Go duration) before the first collection after startup; `0s` disables it. */
  startup_delay: string;
}

export const gcSchedulerConfigDefaults: GcSchedulerConfig = {
  pause_threshold: 0.02,
  deletion_threshold: 0,
  mutation_threshold: 100,
  schedule_delay: '0s',
  startup_delay: '100ms',
};

export const gcSchedulerConfigSchema: JSONSchemaType<GcSchedulerConfig> = {
  $id: 'io.containerd.gc.v1.scheduler',
  type: 'object',
  additionalProperties: false,
  required: ['pause_threshold', 'deletion_threshold', 'mutation_threshold', 'schedule_delay', 'startup_delay'],
  properties: {
    pause_threshold: { type: 'number', default: gcSchedulerConfigDefaults.pause_threshold },
    deletion_threshold: { type: 'integer', default: gcSchedulerConfigDefaults.deletion_threshold },
    mutation_threshold: { type: 'integer', default: gcSchedulerConfigDefaults.mutation_threshold },
    schedule_delay: { type: 'string', pattern: DURATION_PATTERN, default: gcSchedulerConfigDefaults.schedule_delay },
    startup_delay: { type: 'string', pattern: DURATION_PATTERN, default: gcSchedulerConfigDefaults.startup_delay },
  },
};

/** The scheduler's options from a validated section (durations parsed; InvalidArgumentError if one is not). */
export function toSchedulerOptions(config: GcSchedulerConfig): GcSchedulerOptions {
  return {
    pauseThreshold: config.pause_threshold,
    deletionThreshold: config.deletion_threshold,
    mutationThreshold: config.mutation_threshold,
    scheduleDelayMs: parseDuration(config.schedule_delay),
    startupDelayMs: parseDuration(config.startup_delay),
  };
}
