; serial-echo: interrupt-driven COM1 input. Enables the UART's received-data interrupt
; (IER bit 0, MCR OUT2) on IRQ 4 through the 8259A, waits in HLT, and echoes every byte it
; receives upper-cased. A 'q' ends it: "bye" and isa-debug-exit 0x10 (status 33).
bits 32

MULTIBOOT_MAGIC equ 0x1badb002
MULTIBOOT_FLAGS equ 0x00000003
COM1            equ 0x3f8

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
    mov esi, ready
    call serial_puts

    mov eax, com1_handler               ; IDT gate for vector 0x24 (IRQ 4)
    mov edi, idt + 0x24 * 8
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    lidt [idt_descriptor]

    mov al, 0x11                        ; PICs: vectors 0x20 and 0x28, cascade on IR2
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x02
    out 0xa1, al
    mov al, 0x01
    out 0x21, al
    out 0xa1, al
    mov al, 0xef                        ; only IRQ 4
    out 0x21, al
    mov al, 0xff
    out 0xa1, al

    mov dx, COM1 + 4
    mov al, 0x0b                        ; MCR: DTR, RTS, OUT2 (the IRQ gate)
    out dx, al
    mov dx, COM1 + 1
    mov al, 0x01                        ; IER: received data available
    out dx, al
    sti
.idle:
    hlt
    cmp byte [quit], 0
    je .idle
    cli
    mov esi, bye
    call serial_puts
    mov al, 0x10
    out 0xf4, al
.halt:
    hlt
    jmp .halt

com1_handler:
    push eax
    push edx
.next:
    mov dx, COM1 + 5
    in al, dx
    test al, 0x01                       ; LSR.DR
    jz .done
    mov dx, COM1
    in al, dx
    cmp al, 'q'
    jne .echo
    mov byte [quit], 1
    jmp .next
.echo:
    cmp al, 'a'
    jb .send
    cmp al, 'z'
    ja .send
    sub al, 0x20
.send:
    call serial_putc
    jmp .next
.done:
    mov al, 0x20                        ; EOI
    out 0x20, al
    pop edx
    pop eax
    iretd

%include "../common/serial32.inc"

section .rodata
ready: db "serial-echo: type; q quits", 10, 0
bye:   db "bye", 10, 0

section .data
quit: db 0
align 4
idt_descriptor:
    dw 8 * 64 - 1
    dd idt

section .bss
align 16
idt: resb 8 * 64
    resb 4096
stack_top:
