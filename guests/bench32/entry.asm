; Multiboot v1 header and entry for bench32: a stack, then kmain(eax, ebx).
bits 32
MULTIBOOT_MAGIC equ 0x1badb002
MULTIBOOT_FLAGS equ 0x00000003

section .multiboot
align 4
    dd MULTIBOOT_MAGIC
    dd MULTIBOOT_FLAGS
    dd -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

section .text
global _start
extern kmain
_start:
    mov esp, stack_top
    push ebx
    push eax
    call kmain
.halt:
    cli
    hlt
    jmp .halt

section .bss
align 16
    resb 16384
stack_top:
