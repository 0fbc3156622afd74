; reboot: counts its boots in battery-backed CMOS RAM (byte 0x40, which a reset keeps) and
; resets the machine three ways: a triple fault, port 0x92 bit 0, and the 8042's pulse
; (command 0xFE). The fourth boot prints the story and exits through isa-debug-exit
; (status 33). Run with --no-reboot, the first reset ends the run instead.
bits 32

MULTIBOOT_MAGIC equ 0x1badb002
MULTIBOOT_FLAGS equ 0x00000003
BOOT_COUNTER    equ 0x40

section .multiboot
align 4
    dd MULTIBOOT_MAGIC
    dd MULTIBOOT_FLAGS
    dd -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

section .text
global _start
_start:
    mov esp, stack_top
    call serial_init
    mov al, BOOT_COUNTER
    out 0x70, al
    in al, 0x71
    movzx ebx, al
    inc al
    mov ah, al
    mov al, BOOT_COUNTER
    out 0x70, al
    mov al, ah
    out 0x71, al                        ; one more boot, remembered across the reset
    mov esi, [messages + ebx * 4]
    call serial_puts
    cmp ebx, 0
    je .triple_fault
    cmp ebx, 1
    je .port92
    cmp ebx, 2
    je .kbc
    mov al, 0x10
    out 0xf4, al
.halt:
    cli
    hlt
    jmp .halt

.triple_fault:
    lidt [empty_idt]                    ; no gates: #BP → #GP → #DF → shutdown
    int3
    jmp .halt
.port92:
    in al, 0x92
    or al, 0x01
    out 0x92, al
    jmp .halt
.kbc:
    mov al, 0xfe
    out 0x64, al
    jmp .halt

%include "../common/serial32.inc"

section .rodata
boot1: db "boot 1: triple-faulting", 10, 0
boot2: db "boot 2: after the triple fault; resetting through port 0x92", 10, 0
boot3: db "boot 3: after port 0x92; resetting through the 8042", 10, 0
boot4: db "boot 4: after the 8042; done", 10, 0
align 4
messages: dd boot1, boot2, boot3, boot4, boot4, boot4, boot4, boot4
empty_idt:
    dw 0
    dd 0

section .bss
align 16
    resb 4096
stack_top:
