; call-gate: ring 3 calls a ring-0 routine through a 32-bit call gate with two dword
; parameters. The CPU switches to the TSS's ring-0 stack, copies the parameters, and
; RETF 8 returns to ring 3, releasing them on both stacks. A same-level call through a
; ring-0 gate and a JMP through a gate come first.
%include "pm.inc"

GATE_USER   equ GDT_FREE            ; DPL 3 gate to sum_routine, 2 parameters
GATE_KERNEL equ GDT_FREE + 8        ; DPL 0 gate to kernel_routine, no parameters
GATE_JUMP   equ GDT_FREE + 16       ; DPL 0 gate to jump_target

; ebx = selector of a GDT slot, eax = target offset, cl = parameter count, ch = access byte
make_gate:
    mov [gdt + ebx], ax
    mov word [gdt + ebx + 2], KERNEL_CS
    mov [gdt + ebx + 4], cl
    mov [gdt + ebx + 5], ch
    shr eax, 16
    mov [gdt + ebx + 6], ax
    ret

kernel_routine:
    mov eax, esp
    sub eax, [kernel_esp]
    CHECK eax, -8, "the same-level gate call pushed only CS and EIP"
    mov eax, 0x600d
    retf

main:
    mov ebx, GATE_USER
    mov eax, sum_routine
    mov cx, 0xec02                      ; P, DPL 3, 32-bit call gate; 2 parameters
    call make_gate
    mov ebx, GATE_KERNEL
    mov eax, kernel_routine
    mov cx, 0x8c00
    call make_gate
    mov ebx, GATE_JUMP
    mov eax, jump_target
    mov cx, 0x8c00
    call make_gate
    mov eax, 0x80
    mov ebx, back_to_kernel
    mov ecx, GATE_INTERRUPT_USER
    mov edx, KERNEL_CS
    call set_gate

    ; Same privilege: only CS:EIP is pushed; the gate's offset wins over the operand's.
    mov [kernel_esp], esp
    call GATE_KERNEL:0x12345678
    CHECK eax, 0x600d, "a ring-0 CALL through a DPL-0 gate ran the gate's routine"
    CHECK esp, [kernel_esp], "RETF restored ESP after a same-level gate call"
    jmp GATE_JUMP:0
after_jump:

    push USER_DS
    push user_stack_top
    push 0x2
    push USER_CS
    push user_code
    iretd

jump_target:
    CHECK esp, [kernel_esp], "a JMP through a gate pushes nothing"
    jmp after_jump

user_code:
    mov ax, USER_DS
    mov ds, ax
    push 1000                           ; first parameter (deepest)
    push 234                            ; second
    mov [user_esp_before], esp
    call GATE_USER:0
    mov [user_sum], eax
    mov [user_esp_after], esp
    mov ax, cs
    mov [user_cs_after], ax
    int 0x80

sum_routine:
    mov ebx, [esp + 4]
    mov [frame_cs], ebx
    mov ebx, [esp + 16]
    mov [frame_esp], ebx
    mov ebx, [esp + 20]
    mov [frame_ss], ebx
    mov [inner_esp], esp
    mov bx, cs
    mov [inner_cs], bx
    mov eax, [esp + 8]                  ; the copied parameters, in the caller's order
    add eax, [esp + 12]
    retf 8

back_to_kernel:
    mov ax, KERNEL_DS
    mov ds, ax
    CHECK word [inner_cs], KERNEL_CS, "the call gate entered ring 0"
    CHECK dword [inner_esp], stack_top - 24, "on the TSS's ring-0 stack: SS, ESP, 2 parameters, CS, EIP"
    CHECK dword [frame_cs], USER_CS, "the return CS on the inner stack is the ring-3 one"
    CHECK dword [frame_ss], USER_DS, "the caller's SS is on the inner stack"
    mov eax, [user_esp_before]
    CHECK dword [frame_esp], eax, "the caller's ESP is on the inner stack"
    CHECK dword [user_sum], 1234, "the routine summed both copied parameters"
    CHECK word [user_cs_after], USER_CS, "RETF returned to ring 3"
    mov eax, [user_esp_before]
    add eax, 8
    CHECK dword [user_esp_after], eax, "RETF 8 released the parameters on the ring-3 stack"
    jmp pass

section .bss
kernel_esp:      resd 1
user_esp_before: resd 1
user_esp_after:  resd 1
user_sum:        resd 1
user_cs_after:   resd 1
inner_cs:        resd 1
inner_esp:       resd 1
frame_cs:        resd 1
frame_esp:       resd 1
frame_ss:        resd 1
alignb 16
    resb 4096
user_stack_top:
