#!/usr/bin/env bash
# Quick start, part 1: set up, build, and boot the bundled multiboot guest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/setup.sh"
cd "$root"
status=0
node apps/cli/dist/main.js run guests/hello-mb/hello-mb.elf || status=$?
# hello-mb reports success the way QEMU test runners expect: isa-debug-exit value 0x10,
# process status (0x10 << 1) | 1 = 33.
if [ "$status" -eq 33 ]; then
    echo "demo: the guest reported success through isa-debug-exit (exit status 33)" >&2
    exit 0
fi
echo "demo: the guest ended with exit status $status" >&2
exit "$status"
