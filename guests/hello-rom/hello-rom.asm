; hello-rom: a 64 KiB firmware image. The CPU starts at the reset vector F000:FFF0 (the
; last 16 bytes of the image, which a PC maps so it ends at 4 GiB and at 1 MiB); a far
; jump moves to the copy below 1 MiB, which prints one line on COM1, then CLI; HLT.
bits 16
org 0

start:
    cli
    mov ax, cs
    mov ds, ax                          ; strings are in this segment
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    call serial_init
    mov si, message
    call serial_puts
    cli
    hlt
    jmp $

%include "../common/serial16.inc"

message: db "Hello from the ROM at the reset vector!", 13, 10, 0

    times 0xfff0 - ($ - $$) db 0xff
reset_vector:
    jmp 0xf000:start
    times 0x10000 - ($ - $$) db 0xff
