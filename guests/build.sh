#!/usr/bin/env bash
# Rebuilds the bundled guest images from their NASM sources. The built images are
# committed, so tests and the demo need neither nasm nor ld; run this after editing a
# source. Needs: nasm, ld (binutils) — on Debian: apt-get install -y nasm binutils.
set -euo pipefail
cd "$(dirname "$0")"
command -v nasm >/dev/null || { echo "build.sh: nasm is not installed (apt-get install -y nasm)" >&2; exit 1; }
command -v ld >/dev/null || { echo "build.sh: ld is not installed (apt-get install -y binutils)" >&2; exit 1; }

(cd hello && nasm -f bin -o hello.bin hello.asm)
(cd hello32 && nasm -f bin -o hello32.bin hello32.asm)
(cd hello-rom && nasm -f bin -o hello-rom.bin hello-rom.asm)
(cd hello-mb && nasm -f elf32 -o hello-mb.o hello-mb.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o hello-mb.elf hello-mb.o && rm hello-mb.o)
ls -l hello/hello.bin hello32/hello32.bin hello-rom/hello-rom.bin hello-mb/hello-mb.elf
