// The shared configuration, with the phases run one after another: each starts its own daemons, and stalls and
// memory are only measurable on a machine the phases do not share with each other.
import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      fileParallelism: false,
      globalSetup: ['./test/global-setup.ts'],
      // Each phase bounds its own work; these only catch a phase whose bounds failed.
      testTimeout: 120_000,
      hookTimeout: 180_000,
    },
  }),
);
