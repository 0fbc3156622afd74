; hello32: starts in 16-bit real mode at 0000:7C00, loads a flat GDT, switches to 32-bit
; protected mode with a far jump, prints one line on COM1, then CLI; HLT.
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    lgdt [gdt_descriptor]
    mov eax, cr0
    or eax, 1               ; CR0.PE
    mov cr0, eax
    jmp CODE_SELECTOR:protected_mode

bits 32
protected_mode:
    mov ax, DATA_SELECTOR
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, 0x90000
    call serial_init
    mov esi, message
    call serial_puts
    cli
    hlt
    jmp $

%include "../common/serial32.inc"

align 8
gdt:
    dq 0                                    ; null descriptor
    dq 0x00cf9a000000ffff                   ; 0x08: code, base 0, limit 4 GiB, 32-bit, ring 0
    dq 0x00cf92000000ffff                   ; 0x10: data, base 0, limit 4 GiB, writable
gdt_end:
gdt_descriptor:
    dw gdt_end - gdt - 1
    dd gdt

CODE_SELECTOR equ 0x08
DATA_SELECTOR equ 0x10

message: db "Hello from 32-bit protected mode!", 13, 10, 0
