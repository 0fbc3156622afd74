; pc-devices: checks the PC devices against each other, as a real PC would, and prints its
; findings on COM1 (numbers first, then a verdict per check):
;   1. the PIT's rate measured with the RTC: PIT channel 0 at 1000.15 Hz (count 1193,
;      mode 2) and the RTC's periodic interrupt at 1024 Hz (rate 6); over 1024 RTC ticks
;      (one second) the PIT must tick 1000 times (±1 %);
;   2. the CMOS periodic rate measured with the PIT: over 100 PIT ticks (0.1 s) the RTC
;      ticks 102 or 103 times (±2);
;   3. PIC priorities: IRQ 0 and IRQ 8 both pending while masked, then unmasked together:
;      IRQ 0 is taken first (higher priority), and each handler's EOI lets the next in;
;   4. UART loopback: a byte written with MCR loopback set comes back with LSR.DR;
;   5. the CMOS memory-size bytes agree with the multiboot loader's mem_upper (CMOS counts
;      all RAM above 1 MiB up to 63 MiB; a loader may report up to 1 MiB less as usable).
; The waits use HLT with interrupts enabled, so a virtual clock skips the idle time.
; Exit: isa-debug-exit 0x10 (status 33) when every check passed, 0x11 (status 35) otherwise.
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
    mov [multiboot_info], ebx
    call serial_init
    call idt_init
    call pic_init

    ; ---- 1. PIT rate measured with the RTC ------------------------------------------
    call pit_start
    call rtc_start
    mov dword [pit_ticks], 0
    mov dword [rtc_ticks], 0
    mov al, 0xfa                        ; master: IRQ 0 and the cascade (IRQ 2)
    out 0x21, al
    mov al, 0xfe                        ; slave: IRQ 8
    out 0xa1, al
    sti
.wait_rtc_second:
    hlt
    cmp dword [rtc_ticks], 1024
    jb .wait_rtc_second
    cli
    mov eax, [pit_ticks]
    mov esi, text_pit
    call print_number_line
    sub eax, 990                        ; 1000 ± 1 %: hosts that keep time with their own
    cmp eax, 20                         ; clock (QEMU) deliver late ticks a little unevenly
    ja .pit_bad
    mov esi, text_ok1
    call serial_puts
    jmp .check2
.pit_bad:
    call failed

    ; ---- 2. RTC periodic rate measured with the PIT ----------------------------------
.check2:
    mov dword [pit_ticks], 0
    mov dword [rtc_ticks], 0
    sti
.wait_pit:
    hlt
    cmp dword [pit_ticks], 100
    jb .wait_pit
    cli
    mov eax, [rtc_ticks]
    mov esi, text_rtc
    call print_number_line
    sub eax, 100
    cmp eax, 5                          ; 100..105 (102.4 expected, ±2 and a tick of phase)
    ja .rtc_bad
    mov esi, text_ok2
    call serial_puts
    jmp .check3
.rtc_bad:
    call failed

    ; ---- 3. PIC priorities ----------------------------------------------------------
.check3:
    mov al, 0xff                        ; mask everything; requests still reach the IRR
    out 0x21, al
    out 0xa1, al
    mov ecx, 10000000
.wait_both:                             ; spin (interrupts are off) until both are pending
    mov al, 0x0a                        ; OCW3: read IRR
    out 0x20, al
    in al, 0x20
    mov bl, al
    out 0xa0, al
    mov al, 0x0a
    out 0xa0, al
    in al, 0xa0
    test bl, 0x01                       ; IRQ 0 pending at the master
    jz .again
    test al, 0x01                       ; IRQ 8 pending at the slave
    jnz .both_pending
.again:
    dec ecx
    jnz .wait_both
    call failed
    jmp .check4
.both_pending:
    mov dword [order_count], 0
    mov al, 0xfa
    out 0x21, al
    mov al, 0xfe
    out 0xa1, al
    sti
    nop
    nop
    cli
    mov esi, text_order
    call serial_puts
    mov al, [order]
    call serial_putc
    mov al, [order + 1]
    call serial_putc
    mov al, 10
    call serial_putc
    cmp word [order], '08'              ; IRQ 0 first, then IRQ 8
    jne .order_bad
    mov esi, text_ok3
    call serial_puts
    jmp .check4
.order_bad:
    call failed

    ; ---- 4. UART loopback ---------------------------------------------------------
.check4:
    call rtc_stop
    mov al, 0xff
    out 0x21, al
    out 0xa1, al
    mov dx, COM1 + 4
    mov al, 0x10                        ; MCR: loopback
    out dx, al
    mov dx, COM1
    mov al, 0x5a
    out dx, al
    mov dx, COM1 + 5
    in al, dx
    test al, 0x01                       ; LSR.DR: the byte came back
    jz .uart_bad
    mov dx, COM1
    in al, dx
    cmp al, 0x5a
    jne .uart_bad
    mov dx, COM1 + 4
    mov al, 0x03                        ; MCR: DTR, RTS, loopback off
    out dx, al
    mov esi, text_ok4
    call serial_puts
    jmp .check5
.uart_bad:
    mov dx, COM1 + 4
    mov al, 0x03
    out dx, al
    call failed

    ; ---- 5. CMOS memory size --------------------------------------------------------
.check5:
    mov al, 0x31                        ; extended memory (KiB above 1 MiB, up to 63 MiB)
    out 0x70, al
    in al, 0x71
    mov ah, al
    mov al, 0x30
    out 0x70, al
    in al, 0x71
    movzx eax, ax
    mov esi, text_cmos
    call print_number_line
    push eax
    mov ebx, [multiboot_info]
    mov eax, [ebx + 8]                  ; mem_upper
    mov esi, text_mem_upper
    call print_number_line
    mov ecx, eax
    pop eax
    cmp ecx, 0xfc00                     ; CMOS 0x30/0x31 saturate at 63 MiB
    jbe .compare
    mov ecx, 0xfc00
.compare:
    sub eax, ecx                        ; the loader may keep the top back (QEMU keeps 128 KiB)
    cmp eax, 1024
    jae .cmos_bad
    mov esi, text_ok5
    call serial_puts
    jmp .done
.cmos_bad:
    call failed

.done:
    cmp dword [failures], 0
    jne .exit_failed
    mov esi, text_pass
    call serial_puts
    mov al, 0x10
    out 0xf4, al
.exit_failed:
    mov esi, text_fail
    call serial_puts
    mov al, 0x11
    out 0xf4, al
.halt:
    cli
    hlt
    jmp .halt

failed:
    inc dword [failures]
    push esi
    mov esi, text_failed_check
    call serial_puts
    pop esi
    ret

; esi = label, eax = number: prints "label N\n" (keeps eax)
print_number_line:
    push eax
    call serial_puts
    call serial_put_decimal
    mov al, 10
    call serial_putc
    pop eax
    ret

; ---- devices -------------------------------------------------------------------------

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

rtc_start:
    mov al, 0x8a                        ; register A (NMI off while programming)
    out 0x70, al
    mov al, 0x26                        ; divider 32.768 kHz, rate 6 = 1024 Hz
    out 0x71, al
    mov al, 0x8b                        ; register B
    out 0x70, al
    in al, 0x71
    or al, 0x40                         ; PIE
    mov ah, al
    mov al, 0x8b
    out 0x70, al
    mov al, ah
    out 0x71, al
    mov al, 0x0c                        ; read C: clear anything pending
    out 0x70, al
    in al, 0x71
    ret

rtc_stop:
    mov al, 0x8b
    out 0x70, al
    in al, 0x71
    and al, 0xbf
    mov ah, al
    mov al, 0x8b
    out 0x70, al
    mov al, ah
    out 0x71, al
    ret

irq0_handler:
    push eax
    inc dword [pit_ticks]
    mov eax, [order_count]
    cmp eax, 2
    jae .eoi
    mov byte [order + eax], '0'
    inc dword [order_count]
.eoi:
    mov al, 0x20
    out 0x20, al
    pop eax
    iretd

irq8_handler:
    push eax
    inc dword [rtc_ticks]
    mov eax, [order_count]
    cmp eax, 2
    jae .ack
    mov byte [order + eax], '8'
    inc dword [order_count]
.ack:
    mov al, 0x0c                        ; reading register C acknowledges the RTC
    out 0x70, al
    in al, 0x71
    mov al, 0x20
    out 0xa0, al
    out 0x20, al
    pop eax
    iretd

idt_init:
    mov eax, irq0_handler
    mov edi, idt + 0x20 * 8
    call set_gate
    mov eax, irq8_handler
    mov edi, idt + 0x28 * 8
    call set_gate
    lidt [idt_descriptor]
    ret

; eax = handler, edi = gate
set_gate:
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    ret

%include "../common/serial32.inc"

section .rodata
text_pit:          db "pit ticks in one rtc second: ", 0
text_rtc:          db "rtc ticks in 100 pit ticks: ", 0
text_order:        db "irq order: ", 0
text_cmos:         db "cmos extended memory KiB: ", 0
text_mem_upper:    db "multiboot mem_upper KiB: ", 0
text_ok1:          db "ok: pit rate against the rtc", 10, 0
text_ok2:          db "ok: rtc periodic rate against the pit", 10, 0
text_ok3:          db "ok: pic priorities and eoi", 10, 0
text_ok4:          db "ok: uart loopback", 10, 0
text_ok5:          db "ok: cmos memory size", 10, 0
text_failed_check: db "FAILED: the check above", 10, 0
text_pass:         db "pc-devices: all checks passed", 10, 0
text_fail:         db "pc-devices: some checks FAILED", 10, 0

section .data
align 4
pit_ticks:      dd 0
rtc_ticks:      dd 0
order_count:    dd 0
failures:       dd 0
multiboot_info: dd 0
order:          db "--"
idt_descriptor:
    dw 8 * 64 - 1
    dd idt

section .bss
align 16
idt: resb 8 * 64
    resb 4096
stack_top:
