; page-fault: two-level paging identity-maps the first 8 MiB, except that the page at
; 4 MiB starts not present and the one after it read-only. A write to each faults; the
; #PF handler checks nothing itself but records CR2 and the error code, makes the page
; present and writable, INVLPGs it and returns, and the write is retried and lands.
%include "pm.inc"

MISSING  equ 0x400000
READONLY equ 0x401000

main:
    mov eax, 14
    mov ebx, page_fault
    mov ecx, GATE_INTERRUPT
    mov edx, KERNEL_CS
    call set_gate
    ; Page tables: two tables of 1024 identity-mapped 4 KiB pages, present and writable.
    mov edi, page_tables
    mov eax, 0x3
    mov ecx, 2048
.fill:
    stosd
    add eax, 0x1000
    loop .fill
    mov dword [page_tables + (MISSING >> 12) * 4], MISSING | 0x2      ; not present
    mov dword [page_tables + (READONLY >> 12) * 4], READONLY | 0x1    ; read-only
    mov dword [page_directory], page_tables + 0x3
    mov dword [page_directory + 4], page_tables + 0x1000 + 0x3
    mov eax, page_directory
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80010000                  ; PG, WP (ring 0 honours read-only pages)
    mov cr0, eax

    mov dword [MISSING + 0x123], 0x600dcafe
    mov dword [READONLY + 0x40], 0x12345678

    CHECK dword [fault_count], 2, "each write faulted once and was retried after the handler fixed the page"
    CHECK dword [fault_address], MISSING + 0x123, "CR2 held the address of the write to the missing page"
    CHECK dword [fault_code], 2, "error code 2: a supervisor write to a page that is not present"
    CHECK dword [fault_address + 4], READONLY + 0x40, "CR2 held the address of the write to the read-only page"
    CHECK dword [fault_code + 4], 3, "error code 3: a supervisor write to a present read-only page (CR0.WP)"
    CHECK dword [MISSING + 0x123], 0x600dcafe, "the retried write to the formerly missing page landed"
    CHECK dword [READONLY + 0x40], 0x12345678, "the retried write to the formerly read-only page landed"
    mov eax, [page_tables + (MISSING >> 12) * 4]
    and eax, 0x60
    CHECK eax, 0x60, "the page-table entry got its accessed and dirty bits"
    jmp pass

page_fault:
    push eax
    push ebx
    mov ebx, [fault_count]
    mov eax, cr2
    mov [fault_address + ebx * 4], eax
    mov eax, [esp + 8]                  ; the error code, under the two saved registers
    mov [fault_code + ebx * 4], eax
    inc dword [fault_count]
    cmp ebx, 2
    jae .give_up
    mov eax, cr2
    shr eax, 12
    or dword [page_tables + eax * 4], 0x3
    mov eax, cr2
    invlpg [eax]
    pop ebx
    pop eax
    add esp, 4
    iretd
.give_up:
    FAIL "more page faults than writes"

section .bss
fault_count:   resd 1
fault_address: resd 2
fault_code:    resd 2
alignb 4096
page_directory: resb 4096
page_tables:    resb 8192
