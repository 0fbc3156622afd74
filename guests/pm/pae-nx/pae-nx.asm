; pae-nx: PAE paging with execute-disable. CPUID reports PAE and NX; EFER.NXE is set
; with WRMSR; CR4.PAE, CR3 (the PDPT) and CR0.PG turn paging on with 8-byte entries: 4 KiB
; pages for the first 2 MiB, a 2 MiB page above, and at 4 MiB a 4 KiB page marked XD that
; aliases physical 0x300000. Reading it works; calling code there raises #PF with P and
; I/D set; the handler clears XD, INVLPGs, and the retried call runs.
%include "pm.inc"

NX_PAGE equ 0x400000                    ; → physical 0x300000, execute-disable
ALIAS   equ 0x300000                    ; the same frame through the 2 MiB page

main:
    mov eax, 14
    mov ebx, page_fault
    mov ecx, GATE_INTERRUPT
    mov edx, KERNEL_CS
    call set_gate

    mov eax, 1
    cpuid
    and edx, 1 << 6
    CHECK edx, 1 << 6, "CPUID.1:EDX reports PAE"
    mov eax, 0x80000001
    cpuid
    and edx, 1 << 20
    CHECK edx, 1 << 20, "CPUID.80000001h:EDX reports NX"

    mov ecx, 0xc0000080                 ; IA32_EFER
    rdmsr
    or eax, 1 << 11                     ; NXE
    wrmsr

    ; PDPT → one page directory: [0] a table of 512 4 KiB pages (0-2 MiB), [1] a 2 MiB
    ; page at 2 MiB, [2] a table whose first entry maps NX_PAGE to ALIAS with XD.
    mov dword [pdpt], directory + 1
    mov dword [directory], low_table + 3
    mov dword [directory + 8], 0x200000 | 0x83
    mov dword [directory + 16], nx_table + 3
    mov edi, low_table
    mov eax, 3
    mov ecx, 512
.fill:
    mov [edi], eax
    add edi, 8
    add eax, 0x1000
    loop .fill
    mov dword [nx_table], ALIAS | 3
    mov dword [nx_table + 4], 0x80000000 ; XD (bit 63)

    ; The code that will be called at NX_PAGE: mov eax, 0x5a; ret (written through the alias).
    mov dword [ALIAS], 0x00005ab8
    mov dword [ALIAS + 4], 0x0000c300

    mov eax, cr4
    or eax, 1 << 5                      ; PAE
    mov cr4, eax
    mov eax, pdpt
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax

    mov dword [ALIAS + 0x10], 0xfeedf00d
    CHECK dword [NX_PAGE + 0x10], 0xfeedf00d, "the XD page maps the same frame and reads fine"
    xor eax, eax
    call NX_PAGE
    CHECK eax, 0x5a, "the call into the page ran once the handler cleared XD"
    CHECK dword [fault_count], 1, "one page fault: the instruction fetch from the XD page"
    CHECK dword [fault_address], NX_PAGE, "CR2 is the address of the fetch"
    CHECK dword [fault_code], 0x11, "error code 0x11: present page, instruction fetch (I/D)"
    mov eax, [nx_table]
    and eax, 0x20
    CHECK eax, 0x20, "the 8-byte PTE got its accessed bit"
    jmp pass

page_fault:
    push eax
    inc dword [fault_count]
    cmp dword [fault_count], 1
    jne .again
    mov eax, cr2
    mov [fault_address], eax
    mov eax, [esp + 4]
    mov [fault_code], eax
    and dword [nx_table + 4], 0x7fffffff
    mov eax, cr2
    invlpg [eax]
    pop eax
    add esp, 4
    iretd
.again:
    FAIL "a second page fault"

section .bss
fault_count:   resd 1
fault_address: resd 1
fault_code:    resd 1
alignb 4096
pdpt:      resb 4096
directory: resb 4096
low_table: resb 4096
nx_table:  resb 4096
