; ring3: IRET from ring 0 to ring 3, INT 0x80 back to ring 0 through a DPL-3 interrupt
; gate (the stack switched to the TSS's SS0:ESP0), IRET to ring 3 again, and #GP(0) when
; ring 3 tries CLI with IOPL 0.
%include "pm.inc"

USER_STACK_TOP equ user_stack_top

section .text
main:
    mov eax, 0x80
    mov ebx, syscall
    mov ecx, GATE_INTERRUPT_USER
    mov edx, KERNEL_CS
    call set_gate
    mov eax, 13
    mov ebx, general_protection
    mov ecx, GATE_INTERRUPT
    call set_gate
    ; The IRET frame for ring 3: SS, ESP, EFLAGS (IOPL 0, IF 0), CS, EIP.
    push USER_DS
    push USER_STACK_TOP
    push 0x2
    push USER_CS
    push user_code
    iretd

user_code:
    mov ax, USER_DS                     ; DS was nulled by the IRET to an outer level
    mov ds, ax
    mov es, ax
    mov eax, 41
    int 0x80                            ; → syscall at CPL 0, back here with EAX + 1
    mov [user_result], eax
    mov ax, cs
    mov [user_cs], ax
user_cli:
    cli                                 ; IOPL 0 < CPL 3: #GP(0)
    jmp $

syscall:
    mov ebx, [esp + 4]                  ; CS of the caller
    mov [syscall_cs], ebx
    mov ebx, [esp + 16]                 ; SS of the caller
    mov [syscall_ss], ebx
    mov [syscall_esp], esp
    mov bx, cs
    mov [syscall_cpl_cs], bx
    inc eax
    iretd

general_protection:
    pop ebx                             ; the error code
    mov [gp_error], ebx
    mov ebx, [esp + 4]
    mov [gp_cs], ebx
    mov ebx, [esp]
    mov [gp_eip], ebx
    mov ax, KERNEL_DS
    mov ds, ax
    mov es, ax
    CHECK dword [syscall_cs], USER_CS, "INT 0x80 from ring 3 pushed CS with RPL 3"
    CHECK dword [syscall_ss], USER_DS, "the ring-3 SS is in the frame"
    CHECK dword [syscall_esp], stack_top - 20, "the handler ran on the TSS's ring-0 stack"
    CHECK word [syscall_cpl_cs], KERNEL_CS, "the handler ran at CPL 0"
    CHECK dword [user_result], 42, "IRET returned to ring 3 with the handler's EAX"
    CHECK word [user_cs], USER_CS, "ring 3 code sees CS with RPL 3"
    CHECK dword [gp_error], 0, "CLI at CPL 3 with IOPL 0 raised #GP(0)"
    CHECK dword [gp_cs], USER_CS, "the #GP frame names the ring-3 code"
    CHECK dword [gp_eip], user_cli, "the #GP frame points at the CLI"
    jmp pass

section .bss
syscall_cs:     resd 1
syscall_ss:     resd 1
syscall_esp:    resd 1
syscall_cpl_cs: resd 1
user_result:    resd 1
user_cs:        resd 1
gp_error:       resd 1
gp_cs:          resd 1
gp_eip:         resd 1
alignb 16
    resb 4096
user_stack_top:
