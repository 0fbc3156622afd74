#!/usr/bin/env bash
# Installs what the differential and debugger tests drive, when missing: qemu-system-i386
# (Debian package qemu-system-x86) and gdb. Needs root and apt-get (a fresh CI machine has
# both); elsewhere it says what is missing and the tests that need it say so too.
set -euo pipefail
missing=()
command -v qemu-system-i386 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v gdb >/dev/null 2>&1 || missing+=(gdb)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get install ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
    echo "setup: not installed: ${missing[*]} (apt-get install -y ${missing[*]}); their tests will not run" >&2
fi
