#!/usr/bin/env bash
# Quick start, part 1: set up, build, and boot the bundled multiboot guest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/setup.sh"
cd "$root"
exec node apps/cli/dist/main.js run guests/hello-mb/hello-mb.elf "$@"
