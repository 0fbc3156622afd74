; counter: prints "tick N pit T count C" lines on COM1, one every 3 PIT interrupts (PIT
; channel 0 at 1000.15 Hz, IRQ 0; C is the PIT's current count, which follows machine time
; closely), with a short busy loop after each line, then stops with HLT and
; interrupts off (exit status 0). The save/restore tests stop it at chosen instructions:
; byte 0x500 is 1 while the IRQ 0 handler runs and byte 0x501 is 1 around the HLT that
; waits for a tick, so a test can find an instruction inside the handler or while halted.
bits 32

MULTIBOOT_MAGIC equ 0x1badb002
MULTIBOOT_FLAGS equ 0x00000003
LINES           equ 12
IN_HANDLER      equ 0x500
WAITING         equ 0x501

section .multiboot
align 4
    dd MULTIBOOT_MAGIC
    dd MULTIBOOT_FLAGS
    dd -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

section .text
global _start
_start:
    mov esp, stack_top
    mov byte [IN_HANDLER], 0
    mov byte [WAITING], 0
    call serial_init
    call idt_init
    call pic_init
    call pit_start
    mov al, 0xfe                        ; master: only IRQ 0
    out 0x21, al
    sti
    xor ebx, ebx                        ; lines printed
.next_line:
    mov ecx, 3                          ; PIT ticks per line
.wait_tick:
    mov edx, [pit_ticks]
.halt:
    mov byte [WAITING], 1
    hlt
    mov byte [WAITING], 0
    cmp edx, [pit_ticks]
    je .halt
    loop .wait_tick
    inc ebx
    mov esi, text_tick
    mov eax, ebx
    call serial_puts
    call serial_put_decimal
    mov esi, text_pit
    mov eax, [pit_ticks]
    call serial_puts
    call serial_put_decimal
    mov esi, text_count
    call pit_count
    call serial_puts
    call serial_put_decimal
    mov al, 10
    call serial_putc
    mov ecx, 500                        ; a little work between lines (no HLT)
.busy:
    add [checksum], ecx
    loop .busy
    cmp ebx, LINES
    jb .next_line
    cli
    mov esi, text_done
    call serial_puts
    mov eax, [checksum]
    call serial_put_decimal
    mov al, 10
    call serial_putc
    hlt

pic_init:
    mov al, 0x11                        ; ICW1: edge, cascade, ICW4
    out 0x20, al
    out 0xa0, al
    mov al, 0x20                        ; ICW2: vectors 0x20-0x27 and 0x28-0x2F
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 0x04                        ; ICW3: slave on IR2
    out 0x21, al
    mov al, 0x02
    out 0xa1, al
    mov al, 0x01                        ; ICW4: 8086 mode
    out 0x21, al
    out 0xa1, al
    mov al, 0xff
    out 0x21, al
    out 0xa1, al
    ret

pit_start:
    mov al, 0x34                        ; channel 0, lobyte/hibyte, mode 2, binary
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    ret

; eax = PIT channel 0's current count (latched): it follows machine time to the
; nanosecond scale, so a restore that lost or gained time prints other numbers.
pit_count:
    xor eax, eax
    out 0x43, al                        ; counter latch, channel 0
    in al, 0x40
    mov ah, al
    in al, 0x40
    xchg al, ah
    ret

irq0_handler:
    mov byte [IN_HANDLER], 1
    push eax
    inc dword [pit_ticks]
    mov eax, [pit_ticks]
    add [checksum], eax
    mov al, 0x20
    out 0x20, al
    pop eax
    mov byte [IN_HANDLER], 0
    iretd

idt_init:
    mov eax, irq0_handler
    mov edi, idt + 0x20 * 8
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    lidt [idt_descriptor]
    ret

%include "../common/serial32.inc"

section .rodata
text_tick: db "tick ", 0
text_pit:  db " pit ", 0
text_count: db " count ", 0
text_done: db "done, checksum ", 0

section .data
align 8
idt_descriptor:
    dw 256 * 8 - 1
    dd idt
pit_ticks: dd 0
checksum:  dd 0

section .bss
align 8
idt: resb 256 * 8
stack: resb 4096
stack_top:
