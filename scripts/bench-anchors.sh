#!/usr/bin/env bash
# Runs the performance anchors (../shared/anchors/run.sh) with vmmkit as a candidate, so its
# speed is reported as ratios to QEMU, Bochs and v86 measured in the same run on this machine.
# Default: v86 without its JIT and QEMU TCG on the 32-bit multiboot and 16-bit workloads.
# Extra arguments go to run.sh (e.g. --runs 5, --iters 5000, --peers all, --quick).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchors="$root/../shared/anchors/run.sh"
[ -x "$anchors" ] || { echo "bench-anchors: $anchors not found (the shared folder sits beside the repository)" >&2; exit 1; }
. "$root/scripts/setup.sh"
cli="node $root/apps/cli/dist/main.js run"
if [ $# -eq 0 ]; then set -- --peers v86-nojit,qemu-tcg --workloads loop32-mb,boot16 --no-gdb; fi
exec "$anchors" "$@" \
    --candidate "vmmkit=$cli --serial stdio {kernel}" \
    --candidate "vmmkit16=$cli --serial stdio --load-address 0x7c00 {raw16}"
