#!/usr/bin/env bash
# Rebuilds the bundled guest images from their NASM sources. The built images are
# committed, so tests and the demo need neither nasm nor ld; run this after editing a
# source. Needs: nasm, ld (binutils), gcc with 32-bit support and python3 — on Debian:
# apt-get install -y nasm binutils gcc-multilib python3.
set -euo pipefail
cd "$(dirname "$0")"
command -v nasm >/dev/null || { echo "build.sh: nasm is not installed (apt-get install -y nasm)" >&2; exit 1; }
command -v ld >/dev/null || { echo "build.sh: ld is not installed (apt-get install -y binutils)" >&2; exit 1; }

(cd hello && nasm -f bin -o hello.bin hello.asm)
(cd hello32 && nasm -f bin -o hello32.bin hello32.asm)
(cd hello-rom && nasm -f bin -o hello-rom.bin hello-rom.asm)
(cd hello-mb && nasm -f elf32 -o hello-mb.o hello-mb.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o hello-mb.elf hello-mb.o && rm hello-mb.o)
(cd gdb-target && nasm -f elf32 -g -F dwarf -o gdb-target.o gdb-target.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o gdb-target.elf gdb-target.o && rm gdb-target.o)
(cd pc-devices && nasm -f elf32 -o pc-devices.o pc-devices.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o pc-devices.elf pc-devices.o && rm pc-devices.o)
(cd serial-echo && nasm -f elf32 -o serial-echo.o serial-echo.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o serial-echo.elf serial-echo.o && rm serial-echo.o)
(cd reboot && nasm -f elf32 -o reboot.o reboot.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o reboot.elf reboot.o && rm reboot.o)
(cd pgm-monitor && nasm -f elf32 -o pgm-monitor.o pgm-monitor.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o pgm-monitor.elf pgm-monitor.o && rm pgm-monitor.o)
(cd counter && nasm -f elf32 -o counter.o counter.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o counter.elf counter.o && rm counter.o)
(cd cpu-diff && nasm -f bin -o harness.bin harness.asm)
(cd gdb-smp && nasm -f elf32 -g -F dwarf -o gdb-smp.o gdb-smp.asm \
    && ld -m elf_i386 -T link.ld --build-id=none -o gdb-smp.elf gdb-smp.o && rm gdb-smp.o)

# The protected-mode guests have their own script (it also writes their expected output).
bash pm/build.sh

# bench32: freestanding C, and its checksums from the same workload compiled for the host.
CFLAGS=(-m32 -ffreestanding -nostdlib -O2 -fno-pic -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables
        -fno-tree-loop-distribute-patterns -fno-builtin -mno-sse -mno-mmx -mno-80387 -march=i686 -Wall -Wextra)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nasm -f elf32 -o "$work/entry.o" bench32/entry.asm
gcc "${CFLAGS[@]}" -c -o "$work/bench32.o" bench32/bench32.c
ld -m elf_i386 -T bench32/link.ld --build-id=none -z noexecstack -o bench32/bench32.elf "$work/entry.o" "$work/bench32.o"
gcc -O2 -Wall -o "$work/bench32-native" bench32/bench32-native.c
"$work/bench32-native" 1 2 3 10 > bench32/expected.txt

# bench16: NASM, and its checksums from the Python model of the same workload.
(cd bench16 && nasm -f bin -o bench16.bin bench16.asm)
python3 bench16/reference.py 1 2 3 10 > bench16/expected.txt

ls -l hello/hello.bin hello32/hello32.bin hello-rom/hello-rom.bin hello-mb/hello-mb.elf gdb-target/gdb-target.elf gdb-smp/gdb-smp.elf pc-devices/pc-devices.elf serial-echo/serial-echo.elf reboot/reboot.elf pgm-monitor/pgm-monitor.elf counter/counter.elf cpu-diff/harness.bin bench32/bench32.elf bench16/bench16.bin
