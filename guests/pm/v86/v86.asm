; v86: a virtual-8086 monitor. Ring 0 enters V86 mode with IRETD (VM in the image,
; IOPL 0) at 0800:0000, where 16-bit code calls INT 0x21 to "print", runs CLI, STI and
; PUSHF, writes through its own DS and ends with HLT. Each of those is IOPL-sensitive
; (or privileged) and raises #GP(0) into the ring-0 monitor, which finds the V86
; segments on its stack (and ES, DS, FS, GS nulled), emulates the instruction and
; IRETDs back into V86 mode.
%include "pm.inc"

V86_SEGMENT equ 0x0800                  ; code and data at linear 0x8000
V86_STACK   equ 0x0900                  ; SS:SP = 0900:1000 → linear 0xA000 down
HLT_OFFSET  equ v86_hlt - v86_code

main:
    mov eax, 13
    mov ebx, monitor
    mov ecx, GATE_INTERRUPT
    mov edx, KERNEL_CS
    call set_gate
    mov esi, v86_code
    mov edi, V86_SEGMENT * 16
    mov ecx, v86_end - v86_code
    rep movsb
    push dword 0x0500                   ; GS
    push dword 0x0600                   ; FS
    push dword V86_SEGMENT              ; DS
    push dword 0x0700                   ; ES
    push dword V86_STACK                ; SS
    push dword 0x1000                   ; ESP
    push dword 0x00020002               ; EFLAGS: VM, IOPL 0, IF 0
    push dword V86_SEGMENT              ; CS
    push dword 0                        ; EIP
    iretd

; The #GP handler: error code, EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS above the
; registers it saves.
monitor:
    pushad                              ; 32 bytes
    mov bx, ds
    mov ax, KERNEL_DS
    mov ds, ax
    mov es, ax
    mov [monitor_ds], bx
    mov ebp, esp
    movzx esi, word [ebp + 32 + 8]      ; CS
    shl esi, 4
    add esi, [ebp + 32 + 4]             ; + IP: the linear address of the instruction
    mov al, [esi]
    cmp al, 0xcd
    je .int
    cmp al, 0xfa
    je .interrupt_flag
    cmp al, 0xfb
    je .interrupt_flag
    cmp al, 0x9c
    je .pushf
    cmp al, 0xf4
    je .hlt
    FAIL "the monitor met an instruction it does not emulate"
.int:
    cmp byte [esi + 1], 0x21
    jne .bad_int
    mov eax, [ebp + 28]                 ; the V86 EAX (pushad order: EDI … EAX)
    mov ebx, [printed_count]
    mov [printed + ebx], al
    inc dword [printed_count]
    add dword [ebp + 32 + 4], 2
    jmp .return
.bad_int:
    FAIL "INT n other than 0x21"
.interrupt_flag:
    inc dword [flag_instructions]
    inc dword [ebp + 32 + 4]
    jmp .return
.pushf:
    sub word [ebp + 32 + 16], 2         ; SP
    movzx edi, word [ebp + 32 + 20]     ; SS
    shl edi, 4
    movzx eax, word [ebp + 32 + 16]
    add edi, eax
    mov eax, [ebp + 32 + 12]            ; EFLAGS
    mov [edi], ax
    inc dword [ebp + 32 + 4]
    jmp .return
.return:
    popad
    add esp, 4                          ; the error code
    iretd
.hlt:
    CHECK dword [printed], 0x00363856, "INT 0x21 from V86 reached the monitor three times (AL = 'V', '8', '6')"
    CHECK dword [flag_instructions], 2, "CLI and STI with IOPL 0 trapped to the monitor"
    CHECK word [V86_SEGMENT * 16 + 0x100], 0x1234, "V86 code wrote through DS = 0800 (linear 0x8100)"
    CHECK dword [ebp + 32], 0, "#GP error code 0"
    CHECK dword [ebp + 32 + 4], HLT_OFFSET, "the frame's EIP is the HLT's offset in the V86 code segment"
    CHECK dword [ebp + 32 + 8], V86_SEGMENT, "the frame's CS is the V86 segment"
    mov eax, [ebp + 32 + 12]
    and eax, 0x20000
    CHECK eax, 0x20000, "the frame's EFLAGS has VM set"
    CHECK dword [ebp + 32 + 16], 0x1000 - 2, "the frame's ESP shows the word the monitor pushed for PUSHF"
    CHECK dword [ebp + 32 + 20], V86_STACK, "the frame's SS"
    CHECK dword [ebp + 32 + 24], 0x0700, "ES pushed"
    CHECK dword [ebp + 32 + 28], V86_SEGMENT, "DS pushed"
    CHECK dword [ebp + 32 + 32], 0x0600, "FS pushed"
    CHECK dword [ebp + 32 + 36], 0x0500, "GS pushed"
    CHECK word [monitor_ds], 0, "DS was null when the monitor was entered"
    CHECK word [V86_STACK * 16 + 0x1000 - 2], 0x0002, "the emulated PUSHF stored the V86 FLAGS"
    jmp pass

section .rodata
bits 16
v86_code:
    mov al, 'V'
    int 0x21
    mov al, '8'
    int 0x21
    mov al, '6'
    int 0x21
    cli
    sti
    mov ax, 0x1234
    mov [0x100], ax
    pushf
v86_hlt:
    hlt
v86_end:
bits 32

section .bss
monitor_ds:        resd 1
printed_count:     resd 1
printed:           resd 4
flag_instructions: resd 1
