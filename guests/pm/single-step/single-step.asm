; single-step: EFLAGS.TF. POPF setting TF traps after the instruction that follows it;
; POPF clearing TF still traps after itself; MOV SS holds the trap until after the next
; instruction; IRET with TF in the image traps after the first instruction it returns
; to. The #DB handler records the EIP of every trap and DR6.BS.
%include "pm.inc"

main:
    mov eax, 1
    mov ebx, debug_handler
    mov ecx, GATE_INTERRUPT
    mov edx, KERNEL_CS
    call set_gate

    pushfd
    or dword [esp], 0x100
    popfd                               ; TF = 1 from here; no trap after the POPF itself
a1: nop
a2: mov ax, ss
a3: mov ss, ax                          ; no trap here: the MOV SS shadow
a4: nop
a5: pushfd
a6: and dword [esp], ~0x100
a7: popfd                               ; clears TF, and still traps after itself
a8: nop

    pushfd
    pop eax
    or eax, 0x100
    push eax
    push KERNEL_CS
    push b1
    iretd                               ; TF from the image: no trap after the IRET
b1: nop
b2: pushfd
b3: and dword [esp], ~0x100
b4: popfd
b5: nop

    CHECK dword [traps], 10, "ten single-step traps"
    CHECK dword [trap_eip], a2, "the first trap comes after the instruction following POPF"
    CHECK dword [trap_eip + 4], a3, "a trap after MOV AX, SS"
    CHECK dword [trap_eip + 8], a5, "MOV SS and the instruction after it trap as one step"
    CHECK dword [trap_eip + 12], a6, "a trap after PUSHFD"
    CHECK dword [trap_eip + 16], a7, "a trap after AND"
    CHECK dword [trap_eip + 20], a8, "the POPF that clears TF traps after itself"
    CHECK dword [trap_eip + 24], b2, "after IRET with TF in the image, a trap after the first instruction"
    CHECK dword [trap_eip + 36], b5, "and the last trap after the POPF that clears TF again"
    CHECK dword [first_dr6], 0x4000, "DR6.BS reports a single step"
    jmp pass

debug_handler:
    push eax
    push ebx
    mov ebx, [traps]
    mov eax, [esp + 8]
    mov [trap_eip + ebx * 4], eax
    test ebx, ebx
    jnz .not_first
    mov eax, dr6
    and eax, 0xe00f
    mov [first_dr6], eax
.not_first:
    inc dword [traps]
    xor eax, eax
    mov dr6, eax
    cmp ebx, 16
    jae .too_many
    pop ebx
    pop eax
    iretd
.too_many:
    FAIL "single-stepping did not stop"

section .bss
traps:     resd 1
first_dr6: resd 1
trap_eip:  resd 16
