// One workspace lint, type-aware, with only the rules that catch bugs we have had: a promise nobody awaits or
// handles (its rejection reaches the event loop unhandled) and a promise passed where a plain value or a void
// callback is expected (an `if (promise)` that is always true, an async listener whose rejection nobody sees).
// Not a style guide: nothing else is enabled. Run by tools/test.sh (`pnpm run lint`), so CI fails on a new finding.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/node_modules/**', '**/dist/**', '**/.nx/**', 'packages/api/src/generated/**', '**/*.mjs', '**/*.js', '**/*.cjs'],
  },
  {
    files: ['packages/**/src/**/*.ts', 'packages/**/test/**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      // Each file is checked in the program of its nearest tsconfig.json (test/ folders have their own).
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    // Directives for rules this config does not enable (no-explicit-any) are left alone.
    linterOptions: { reportUnusedDisableDirectives: 'off' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
