#!/usr/bin/env bash
# Quick start, part 2: set up, build, then run every check: type checks, package lint
# (publint) and all vitest suites. Ends with one line "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/setup.sh"
cd "$root"
bash scripts/install-test-tools.sh
echo "test: type check" >&2
pnpm exec tsc -p tsconfig.json
echo "test: package lint (publint)" >&2
pnpm exec turbo run lint:package --output-logs=errors-only >&2
echo "test: vitest" >&2
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=test-report.json "$@" || status=$?
node scripts/test-summary.mjs test-report.json || status=1
exit $status
