; io-breakpoint: an I/O breakpoint (DR3, R/W 10 with CR4.DE, LEN 1 on port 0x80) traps
; after the OUT to that port with DR6.B3, and an IN from a port next to it raises nothing.
; Under `vmmkit run` the port access exits to the VMM, whose instruction-emulator helper
; completes the OUT and then owes the guest the trap (whpx-sim checks DR7 there).
%include "pm.inc"

main:
    mov eax, 1
    mov ebx, debug_handler
    mov ecx, GATE_INTERRUPT
    mov edx, KERNEL_CS
    call set_gate

    mov eax, cr4
    or eax, 0x8                         ; CR4.DE: R/W = 10 means I/O
    mov cr4, eax
    mov eax, 0x80
    mov dr3, eax
    mov eax, 0x400 | 0x40 | (2 << 28)   ; L3, R/W3 = 10, LEN3 = 00
    mov dr7, eax
    in al, 0x81                         ; not the watched port: nothing
    mov al, 0x5a
    out 0x80, al
out_after:
    nop
    xor eax, eax
    mov dr7, eax

    CHECK dword [events], 1, "one #DB: the OUT to port 0x80, nothing for the IN from 0x81"
    CHECK dword [event_eip], out_after, "the I/O breakpoint trapped after the OUT"
    CHECK dword [event_dr6], 0x8, "DR6.B3 for the I/O breakpoint"
    jmp pass

debug_handler:
    push eax
    push ebx
    mov ebx, [events]
    cmp ebx, 4
    jae .too_many
    mov eax, dr6
    and eax, 0xe00f                     ; B0-B3, BD, BS, BT
    mov [event_dr6 + ebx * 4], eax
    mov eax, [esp + 8]                  ; the EIP in the frame
    mov [event_eip + ebx * 4], eax
    inc dword [events]
    xor eax, eax
    mov dr6, eax
    pop ebx
    pop eax
    iretd
.too_many:
    FAIL "more #DB events than expected"

section .bss
events:    resd 1
event_dr6: resd 4
event_eip: resd 4
