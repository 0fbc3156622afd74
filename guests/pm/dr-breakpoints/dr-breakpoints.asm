; dr-breakpoints: the debug registers. An instruction breakpoint (a fault: the handler
; sets RF in the frame to let the instruction run), a data write breakpoint and a 2-byte
; read/write breakpoint (traps after the access), and general detect (DR7.GD: MOV from a
; debug register faults with DR6.BD, and the CPU clears GD for the handler so the
; restarted MOV works). The #DB handler records DR6 and the EIP of each event.
; I/O breakpoints have their own guest (io-breakpoint): under `vmmkit run` the port access
; exits to the VMM, which completes the IN/OUT and then delivers the trap.
%include "pm.inc"

main:
    mov eax, 1
    mov ebx, debug_handler
    mov ecx, GATE_INTERRUPT
    mov edx, KERNEL_CS
    call set_gate

    ; 1. Instruction breakpoint on exec_target (DR0, R/W 00, LEN 00, L0).
    mov eax, exec_target
    mov dr0, eax
    mov byte [set_rf], 1
    mov eax, 0x401
    mov dr7, eax
    xor esi, esi
exec_target:
    inc esi
    inc esi
    mov [exec_count], esi
    mov byte [set_rf], 0

    ; 2. Data write breakpoint on the dword `watched` (DR1, R/W 01, LEN 11, L1).
    mov eax, watched
    mov dr1, eax
    mov eax, 0x400 | 0x4 | (1 << 20) | (3 << 22)
    mov dr7, eax
    mov eax, [watched]                  ; a read: no event
    mov byte [watched + 3], 7           ; the last byte of the range
write_after:
    nop

    ; 3. Read/write breakpoint on the word `watched2` (DR2, R/W 11, LEN 01, L2).
    mov eax, watched2 + 1               ; LEN 2 ignores bit 0
    mov dr2, eax
    mov eax, 0x400 | 0x10 | (3 << 24) | (1 << 26)
    mov dr7, eax
    mov ax, [watched2]
read_after:
    nop

    ; 4. General detect: with DR7.GD set, MOV from DR0 faults.
    mov eax, 0x400 | 0x2000
    mov dr7, eax
gd_access:
    mov eax, dr0
    mov ebx, dr7

    CHECK dword [events], 4, "four #DB events: one per breakpoint, nothing for the read before the write breakpoint"
    CHECK dword [exec_count], 2, "the instruction under the breakpoint ran once, after the handler set RF"
    CHECK dword [event_eip], exec_target, "the instruction breakpoint is a fault: EIP at the instruction"
    CHECK dword [event_dr6], 0x1, "DR6.B0 for the instruction breakpoint"
    CHECK dword [event_eip + 4], write_after, "the write breakpoint trapped after the MOV"
    CHECK dword [event_dr6 + 4], 0x2, "DR6.B1 for the write breakpoint"
    CHECK dword [event_eip + 8], read_after, "the read/write breakpoint trapped after the read"
    CHECK dword [event_dr6 + 8], 0x4, "DR6.B2 for the read/write breakpoint"
    CHECK dword [event_eip + 12], gd_access, "general detect is a fault at the MOV from DR0"
    CHECK dword [event_dr6 + 12], 0x2000, "DR6.BD for general detect"
    CHECK eax, exec_target, "the restarted MOV read DR0 once the CPU had cleared GD"
    CHECK ebx, 0x400, "DR7.GD is clear after the #DB"
    CHECK byte [watched + 3], 7, "the watched write landed"
    jmp pass

debug_handler:
    push eax
    push ebx
    mov ebx, [events]
    mov eax, dr6
    and eax, 0xe00f                     ; B0-B3, BD, BS, BT
    mov [event_dr6 + ebx * 4], eax
    mov eax, [esp + 8]                  ; the EIP in the frame
    mov [event_eip + ebx * 4], eax
    inc dword [events]
    xor eax, eax
    mov dr6, eax
    cmp ebx, 8
    jae .too_many
    cmp byte [set_rf], 0
    je .done
    or dword [esp + 16], 0x10000        ; RF in the frame's EFLAGS
.done:
    pop ebx
    pop eax
    iretd
.too_many:
    FAIL "more #DB events than breakpoints"

section .data
align 4
watched:  dd 0
watched2: dd 0x1234

section .bss
set_rf:    resd 1
exec_count: resd 1
events:    resd 1
event_dr6: resd 8
event_eip: resd 8
