; hello-mb: a multiboot v1 kernel (ELF, loaded at 1 MiB) as qemu-system-i386 -kernel runs it.
; Checks the boot loader's magic in EAX, prints the memory size from the multiboot
; information block (EBX), then reports success through isa-debug-exit: writing 0x10 to
; port 0xF4 ends the machine with exit status (0x10 << 1) | 1 = 33, the convention of
; QEMU-based test runners.
bits 32

MULTIBOOT_MAGIC equ 0x1badb002
MULTIBOOT_FLAGS equ 0x00000003          ; page-align modules, want memory information
BOOT_MAGIC      equ 0x2badb002
DEBUG_EXIT_PORT equ 0xf4
EXIT_SUCCESS    equ 0x10
EXIT_FAILURE    equ 0x11

section .multiboot
align 4
    dd MULTIBOOT_MAGIC
    dd MULTIBOOT_FLAGS
    dd -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

section .text
global _start
_start:
    mov esp, stack_top
    mov edi, eax                        ; keep the boot magic
    call serial_init
    cmp edi, BOOT_MAGIC
    jne .bad_magic
    mov esi, greeting
    call serial_puts
    mov eax, [ebx + 8]                  ; mem_upper: KiB above 1 MiB
    call serial_put_decimal
    mov esi, greeting_end
    call serial_puts
    mov al, EXIT_SUCCESS
    out DEBUG_EXIT_PORT, al
    jmp .halt
.bad_magic:
    mov esi, bad_magic
    call serial_puts
    mov al, EXIT_FAILURE
    out DEBUG_EXIT_PORT, al
.halt:
    cli
    hlt
    jmp .halt

%include "../common/serial32.inc"

section .rodata
greeting:     db "Hello from a multiboot guest! The boot loader reports ", 0
greeting_end: db " KiB of memory above 1 MiB.", 13, 10, 0
bad_magic:    db "hello-mb: not started by a multiboot loader (EAX is not 0x2BADB002)", 13, 10, 0

section .bss
align 16
    resb 4096
stack_top:
