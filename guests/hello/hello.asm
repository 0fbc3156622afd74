; hello: the smallest bundled guest. 16-bit real mode, loaded and entered at 0000:7C00
; (like a boot sector). Prints one line on COM1, then powers off with CLI; HLT.
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    call serial_init
    mov si, message
    call serial_puts
    cli
    hlt
    jmp $

%include "../common/serial16.inc"

message: db "Hello from a 16-bit real-mode guest!", 13, 10, 0
