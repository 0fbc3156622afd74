#!/usr/bin/env bash
# Rebuilds the protected-mode test guests (multiboot ELF kernels loaded at 1 MiB) from
# their NASM sources. The images are committed; run this after editing a source. Needs
# nasm and ld (binutils): apt-get install -y nasm binutils.
set -euo pipefail
cd "$(dirname "$0")"
command -v nasm >/dev/null || { echo "build.sh: nasm is not installed (apt-get install -y nasm)" >&2; exit 1; }
command -v ld >/dev/null || { echo "build.sh: ld is not installed (apt-get install -y binutils)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for source in */*.asm; do
  name=$(basename "$source" .asm)
  dir=$(dirname "$source")
  [ "$dir" = common ] && continue
  nasm -f elf32 -I common/ -I ../common/ -o "$work/$name.o" "$source"
  ld -m elf_i386 -T common/link.ld --build-id=none -o "$dir/$name.elf" "$work/$name.o"
  # The expected output: one "ok:" line per CHECK, in source order (each guest runs its
  # checks once, top to bottom), then PASS. Lines end in CR LF as serial_puts sends them.
  sed -n 's/^ *CHECK [^"]*"\(.*\)"$/ok: \1\r/p' "$source" > "$dir/expected.txt"
  printf 'PASS\r\n' >> "$dir/expected.txt"
done
ls -l */*.elf
