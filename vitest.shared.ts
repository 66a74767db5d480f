// One vitest configuration for every package: each package's vitest.config.ts re-exports it.
// - oxc must be told about legacy decorators and their metadata, or tsyringe classes in tests fail to parse.
// - @berth/* imports resolve to the sources, so a package's tests never run against a stale dist of another.
import { defineConfig } from 'vitest/config';

const root = new URL('.', import.meta.url).pathname;

export default defineConfig({
  oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
  resolve: {
    alias: [
      { find: /^@berth\/core\/testing$/, replacement: `${root}packages/core/src/testing/index.ts` },
      { find: /^@berth\/images\/testing$/, replacement: `${root}packages/images/src/testing/index.ts` },
      { find: /^@berth\/(core|api|client|registry|images|sys)$/, replacement: `${root}packages/$1/src/index.ts` },
      { find: /^@berth\/plugin-(.+)$/, replacement: `${root}packages/plugins/$1/src/index.ts` },
    ],
  },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    setupFiles: [`${root}tools/vitest-setup.ts`],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
  },
});
