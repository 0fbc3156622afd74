; gdb-smp: a multiboot kernel for `vmmkit run --smp 2`. Every vCPU starts at _start (there
; is no APIC to hold the second in wait-for-SIPI); LOCK XADD hands out the ids 0 and 1.
; Each vCPU counts to ROUNDS in its own slot through smp_site; vCPU 0 waits for both and
; prints "smp: A B", then exits through isa-debug-exit (status 33).
bits 32

MULTIBOOT_MAGIC equ 0x1badb002
MULTIBOOT_FLAGS equ 0x00000003
ROUNDS          equ 1000

section .multiboot
align 4
    dd MULTIBOOT_MAGIC
    dd MULTIBOOT_FLAGS
    dd -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

section .text
global _start, smp_site, park
_start:
    mov eax, 1
    lock xadd [next_id], eax
    mov ebx, eax                        ; this vCPU's id
    imul ecx, ebx, 4096
    mov esp, stacks_top
    sub esp, ecx

smp_loop:
smp_site:
    inc dword [counts + ebx * 4]
    cmp dword [counts + ebx * 4], ROUNDS
    jb smp_loop
    lock inc dword [done]
    test ebx, ebx
    jnz park
.wait_all:
    pause
    cmp dword [done], 2
    jb .wait_all
    call serial_init
    mov esi, text
    call serial_puts
    mov eax, [counts]
    call serial_put_decimal
    mov al, ' '
    call serial_putc
    mov eax, [counts + 4]
    call serial_put_decimal
    mov al, 10
    call serial_putc
    mov al, 0x10
    out 0xf4, al
park:
    pause
    jmp park

%include "../common/serial32.inc"

section .rodata
text: db "smp: ", 0

section .data
align 4
global next_id, counts, done
next_id: dd 0
counts:  dd 0, 0
done:    dd 0

section .bss
align 16
    resb 2 * 4096
stacks_top:
