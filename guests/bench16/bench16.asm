; bench16: the 16-bit real-mode compute workload of `vmmkit bench cpu`. Loaded and entered
; at 0000:7C00. Each iteration fills 2 KiB from a 16-bit linear congruential generator,
; takes a bitwise CRC-16/CCITT over it with LODSB, copies it to another segment with
; MOVSW, hashes the copy with 0x66-prefixed 32-bit ROL/IMUL, and folds the results into a
; checksum through a far and a near call. reference.py computes the same checksum.
;
; The iteration count is the dword at offset 10 ("vmmkit16" signature before it); a host
; patches it before running. Output on COM1; exit through isa-debug-exit (0x10).
bits 16
org 0x7c00

BUFFER      equ 0x8000          ; DS:BUFFER, 2 KiB
COPY_SEGMENT equ 0x1000         ; ES:0, 2 KiB

start:
    jmp short main
    db "vmmkit16"
iterations: dd 1

main:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov ax, COPY_SEGMENT
    mov es, ax
    call serial_init
    mov si, message_start
    call serial_puts
    mov eax, [iterations]
    call put_hex32
    mov si, line_end
    call serial_puts

    xor ebx, ebx                ; checksum
    xor ebp, ebp                ; iteration index
    mov word [seed], 0x1234
.iteration:
    ; fill: seed = seed * 25173 + 13849; byte = seed >> 8
    mov di, BUFFER
    mov cx, 2048
    mov ax, [seed]
.fill:
    mov dx, 25173
    mul dx
    add ax, 13849
    mov [di], ah
    inc di
    loop .fill
    mov [seed], ax
    ; CRC-16/CCITT, initial 0xFFFF, most significant bit first
    mov si, BUFFER
    mov cx, 2048
    mov dx, 0xffff
.crc_byte:
    lodsb
    xor dh, al
    mov ah, 8
.crc_bit:
    shl dx, 1
    jnc .no_xor
    xor dx, 0x1021
.no_xor:
    dec ah
    jnz .crc_bit
    loop .crc_byte
    mov [crc], dx
    ; copy 1024 words to ES:0
    mov si, BUFFER
    xor di, di
    mov cx, 1024
.copy:
    movsw
    loop .copy
    ; hash the copy: h = crc | iteration << 16; per dword: h = rol(h ^ x, 5) * 0x9E3779B1
    movzx eax, word [crc]
    mov edx, ebp
    shl edx, 16
    or eax, edx
    xor si, si
    mov cx, 512
.hash:
    xor eax, [es:si]
    rol eax, 5
    imul eax, eax, 0x9e3779b1
    add si, 4
    loop .hash
    call 0:far_add
    call mix
    inc ebp
    cmp ebp, [iterations]
    jb .iteration

    mov si, message_done
    call serial_puts
    mov eax, [iterations]
    call put_hex32
    mov si, message_checksum
    call serial_puts
    mov eax, ebx
    call put_hex32
    mov si, line_end
    call serial_puts
    mov al, 0x10
    out 0xf4, al
.halt:
    cli
    hlt
    jmp .halt

; checksum += h (a far procedure: CALL FAR / RETF)
far_add:
    add ebx, eax
    retf

; checksum = rol(checksum, 3) ^ crc
mix:
    rol ebx, 3
    movzx edx, word [crc]
    xor ebx, edx
    ret

; eax printed as 8 hex digits
put_hex32:
    push eax
    push cx
    mov cx, 8
.digit:
    rol eax, 4
    push eax
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .print
    add al, 'a' - '9' - 1
.print:
    call serial_putc
    pop eax
    loop .digit
    pop cx
    pop eax
    ret

%include "../common/serial16.inc"

message_start:    db "bench16 start iterations=", 0
message_done:     db "bench16 done iterations=", 0
message_checksum: db " checksum=", 0
line_end:         db 13, 10, 0
seed: dw 0
crc:  dw 0
