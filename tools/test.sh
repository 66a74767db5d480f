#!/usr/bin/env bash
# Sets up (idempotent) and runs every package's tests: unit tests, integration tests that start berthd on temp
# dirs and drive it with Debian's ctr, and the reliability suite (tools/chaos: malformed input, SIGKILL, disk full,
# ReDoS filters, connection bursts, memory; it prints a summary table), after the workspace lint. Ends with the line
# `N passed, N failed`.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
export NX_DAEMON=false NX_NO_CLOUD=true
find packages tools -name test-results.json -not -path '*/node_modules/*' -delete
# Type-aware lint for floating and misused promises (eslint.config.mjs): a finding fails the run.
npx -y pnpm@12.4.2 run lint
lint_status=$?
# Every package's sources and tests type-check (tests run through vitest, which strips types without checking them).
npx -y pnpm@12.4.2 exec nx run-many -t typecheck --output-style=static
typecheck_status=$?
npx -y pnpm@12.4.2 exec nx run-many -t test --output-style=static --parallel=1 "$@"
status=$?
if [ "$lint_status" -ne 0 ]; then echo "lint failed (exit $lint_status)"; status=1; fi
if [ "$typecheck_status" -ne 0 ]; then echo "typecheck failed (exit $typecheck_status)"; status=1; fi
node tools/test-summary.mjs "$status" || status=1
exit $status
