; gdb-target: a multiboot kernel written to be debugged. Its labels (kept in the ELF's
; symbol table) name the places the gdb tests stop at: a loop whose first instruction runs
; exactly LOOPS times, a straight run of instructions for stepi, a variable written and
; then read (for watchpoints), a spin loop that waits for a flag (for Ctrl-C), the guest's
; own INT3 with its handler, and a report that prints what gdb may have changed.
; Output on COM1: "gdb-target: 12345", "result N", "int3 handled", then isa-debug-exit
; with 0x10 (exit status 33).
bits 32

MULTIBOOT_MAGIC equ 0x1badb002
MULTIBOOT_FLAGS equ 0x00000003
LOOPS           equ 5

section .multiboot
align 4
    dd MULTIBOOT_MAGIC
    dd MULTIBOOT_FLAGS
    dd -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

section .text
global _start, count_site, trace_start, trace_1, trace_2, trace_3, trace_4, trace_5, trace_6
global trace_7, trace_8, trace_end, watch_write, watch_read, store_result, spin_loop, guest_int3, int3_handler
global report_site, finish
_start:
    mov esp, stack_top
    call serial_init
    mov esi, banner
    call serial_puts

count_loop:
count_site:
    inc dword [counter]                 ; a breakpoint here is hit LOOPS times
    mov eax, [counter]
    add al, '0'
    call serial_putc
    cmp dword [counter], LOOPS
    jb count_loop
    mov al, 10
    call serial_putc

trace_start:
    mov eax, 1
trace_1:
    add eax, 2
trace_2:
    push eax
trace_3:
    pop ebx
trace_4:
    xchg eax, ebx
trace_5:
    lea ecx, [eax + ebx * 2]
trace_6:
    pushfd
trace_7:
    popfd
trace_8:
    nop
trace_end:

watch_write:
    mov dword [watched], 0x1234
watch_read:
    mov eax, [watched]
store_result:
    mov [result], eax

spin_loop:
    cmp dword [spin], 0                 ; gdb sets spin to make the guest loop here
    jne spin_loop

    mov eax, [result]
report_site:
    add eax, [bonus]                    ; gdb may change EAX and bonus here
    push eax
    mov esi, result_text
    call serial_puts
    pop eax
    call serial_put_decimal
    mov al, 10
    call serial_putc
    ; The guest's own INT3, through its own IDT: it must reach the guest even while gdb
    ; has breakpoints armed.
    lidt [idt_descriptor]
    mov eax, int3_handler
    mov [idt + 3 * 8], ax
    mov word [idt + 3 * 8 + 2], 0x08
    mov word [idt + 3 * 8 + 4], 0x8e00  ; present, DPL 0, 32-bit interrupt gate
    shr eax, 16
    mov [idt + 3 * 8 + 6], ax
guest_int3:
    int3
    cmp dword [int3_count], 1
    jne fail
    mov esi, int3_text
    call serial_puts

finish:
    mov al, 0x10
    out 0xf4, al
.halt:
    cli
    hlt
    jmp .halt

fail:
    mov esi, fail_text
    call serial_puts
    mov al, 0x11
    out 0xf4, al
    jmp finish.halt

int3_handler:
    inc dword [int3_count]
    iretd

%include "../common/serial32.inc"

section .rodata
banner:      db "gdb-target: ", 0
int3_text:   db "int3 handled", 10, 0
result_text: db "result ", 0
fail_text:   db "gdb-target: FAILED (the guest's INT3 did not reach its handler once)", 10, 0

section .data
align 8
global counter, watched, result, spin, bonus, int3_count
counter:     dd 0
watched:     dd 0
result:      dd 0
spin:        dd 0
bonus:       dd 0
int3_count:  dd 0
idt_descriptor:
    dw 8 * 32 - 1
    dd idt

section .bss
align 16
idt: resb 8 * 32
    resb 4096
stack_top:
