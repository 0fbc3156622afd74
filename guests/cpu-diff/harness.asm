; cpu-diff harness: a multiboot kernel (a.out kludge, flat binary at 1 MiB) into which the
; differential test (apps/cli/test/cpu-differential.test.ts) splices a block of random
; instructions. Layout the generator relies on:
;   file offset 0x00  multiboot header; load_end_addr (offset 0x14) and bss_end_addr (0x18)
;                     are patched by the generator to cover the block
;   file offset 0x40  initial state: EAX ECX EDX EBX EBP ESI EDI EFLAGS (8 dwords)
;   file offset 0x60  the address of log_state (for the generator's CALLs)
;   file offset 0x1000 the block: random instructions, each followed by CALL log_state,
;                     ending with RET
; After the block the harness prints every logged state (EAX ECX EDX EBX EBP ESI EDI EFLAGS
; as hex) and the 64-byte scratch area at 0x1E0000 on COM1, then writes 0x10 to the
; isa-debug-exit port.
bits 32
org 0x100000

LOG        equ 0x200000
SCRATCH    equ 0x1e0000
STACK_TOP  equ 0x1f0000
COM1       equ 0x3f8

header:
    dd 0x1badb002
    dd 0x00010000                       ; the address fields below are valid
    dd -(0x1badb002 + 0x00010000)
    dd header                           ; header_addr
    dd header                           ; load_addr
    dd 0                                ; load_end_addr (patched)
    dd 0                                ; bss_end_addr (patched)
    dd start                            ; entry_addr

times 0x40 - ($ - $$) db 0
initial_state:
    times 8 dd 0
times 0x60 - ($ - $$) db 0
    dd log_state

start:
    mov esp, STACK_TOP
    call serial_init
    mov dword [log_pointer], LOG
    mov esi, banner
    call serial_puts
    push dword [initial_state + 28]
    popfd
    mov eax, [initial_state + 0]
    mov ecx, [initial_state + 4]
    mov edx, [initial_state + 8]
    mov ebx, [initial_state + 12]
    mov ebp, [initial_state + 16]
    mov esi, [initial_state + 20]
    mov edi, [initial_state + 24]
    call 0x101000                       ; the block
    ; Print the log: one line per state, eight dwords.
    mov esi, LOG
.line:
    cmp esi, [log_pointer]
    jae .scratch
    mov ecx, 8
.dword:
    lodsd
    call print_hex
    mov al, ' '
    call serial_putc
    loop .dword
    mov al, 10
    call serial_putc
    jmp .line
.scratch:
    mov esi, scratch_text
    call serial_puts
    mov esi, SCRATCH
    mov ecx, 16
.scratch_dword:
    lodsd
    call print_hex
    mov al, ' '
    call serial_putc
    loop .scratch_dword
    mov al, 10
    call serial_putc
    mov al, 0x10
    out 0xf4, al
.halt:
    cli
    hlt
    jmp .halt

; Appends EAX ECX EDX EBX EBP ESI EDI EFLAGS to the log, changing nothing.
log_state:
    pushfd
    pushad                              ; [esp]: edi esi ebp esp ebx edx ecx eax, then eflags
    mov edi, [log_pointer]
    mov eax, [esp + 28]
    mov [edi], eax
    mov eax, [esp + 24]
    mov [edi + 4], eax
    mov eax, [esp + 20]
    mov [edi + 8], eax
    mov eax, [esp + 16]
    mov [edi + 12], eax
    mov eax, [esp + 8]
    mov [edi + 16], eax
    mov eax, [esp + 4]
    mov [edi + 20], eax
    mov eax, [esp + 0]
    mov [edi + 24], eax
    mov eax, [esp + 32]
    mov [edi + 28], eax
    add edi, 32
    mov [log_pointer], edi
    popad
    popfd
    ret

; eax: printed as eight hex digits
print_hex:
    push ecx
    push edx
    mov edx, eax
    mov ecx, 8
.digit:
    rol edx, 4
    mov eax, edx
    and eax, 0x0f
    mov al, [hex_digits + eax]
    call serial_putc
    loop .digit
    pop edx
    pop ecx
    ret

%include "../common/serial32.inc"

banner:       db "cpu-diff", 10, 0
scratch_text: db "scratch ", 0
hex_digits:   db "0123456789abcdef"
align 4
log_pointer:  dd 0

times 0x1000 - ($ - $$) db 0
