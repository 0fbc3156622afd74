#!/usr/bin/env bash
# One-time (and idempotent) set-up for a fresh machine that has only Node 20 and npm:
# brings pnpm at the pinned version, installs the workspace, builds every package.
# Sourced by demo.sh and test.sh, which then find `pnpm` on PATH.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pinned=$(node -p "require('$root/package.json').packageManager.split('@')[1]")

if [ "$(pnpm --version 2>/dev/null || true)" != "$pinned" ]; then
    # A private copy under .tools/ needs no root rights and leaves any global pnpm alone.
    if [ "$("$root/.tools/node_modules/.bin/pnpm" --version 2>/dev/null || true)" != "$pinned" ]; then
        echo "setup: installing pnpm $pinned into .tools/" >&2
        npm install --prefix "$root/.tools" --no-audit --no-fund --silent "pnpm@$pinned" >&2
    fi
    export PATH="$root/.tools/node_modules/.bin:$PATH"
fi

cd "$root"
echo "setup: pnpm install" >&2
pnpm install --frozen-lockfile --reporter=silent >&2
echo "setup: building packages" >&2
pnpm exec turbo run build --output-logs=errors-only >&2
