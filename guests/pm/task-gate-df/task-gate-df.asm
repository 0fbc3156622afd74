; task-gate-df: hardware task switches. A CALL through a task gate in the GDT runs a
; nested task (NT set, back link to the caller) that IRETs back. Then a double fault
; (#GP while its own gate is missing → #NP → #DF) is handled by a task gate in the IDT:
; the #DF task starts on its own stack with the error code pushed there.
%include "pm.inc"

TSS_NESTED equ GDT_FREE
TSS_DF     equ GDT_FREE + 8
TASK_GATE  equ GDT_FREE + 16
EMPTY_SLOT equ GDT_FREE + 24            ; an all-zero descriptor: loading it is #GP

; ebx = GDT selector, eax = TSS base: an available 32-bit TSS descriptor, limit 0x67
make_tss_descriptor:
    mov word [gdt + ebx], 0x67
    mov [gdt + ebx + 2], ax
    shr eax, 16
    mov [gdt + ebx + 4], al
    mov byte [gdt + ebx + 5], 0x89
    mov byte [gdt + ebx + 6], 0
    mov [gdt + ebx + 7], ah
    ret

; edi = TSS, eax = EIP, ebx = ESP: a flat ring-0 task with interrupts off
make_task:
    mov [edi + 0x20], eax
    mov dword [edi + 0x24], 0x2
    mov [edi + 0x38], ebx
    mov dword [edi + 0x48], KERNEL_DS   ; ES
    mov dword [edi + 0x4c], KERNEL_CS
    mov dword [edi + 0x50], KERNEL_DS   ; SS
    mov dword [edi + 0x54], KERNEL_DS
    mov dword [edi + 0x58], KERNEL_DS
    mov dword [edi + 0x5c], KERNEL_DS
    mov word [edi + 0x66], 104
    ret

main:
    mov edi, nested_tss
    mov eax, nested_task
    mov ebx, nested_stack_top
    call make_task
    mov edi, df_tss
    mov eax, double_fault_task
    mov ebx, df_stack_top
    call make_task
    mov ebx, TSS_NESTED
    mov eax, nested_tss
    call make_tss_descriptor
    mov ebx, TSS_DF
    mov eax, df_tss
    call make_tss_descriptor
    mov word [gdt + TASK_GATE + 2], TSS_NESTED
    mov byte [gdt + TASK_GATE + 5], 0x85 ; P, DPL 0, task gate

    mov eax, 0x0badf00d
    mov ebx, 0x5a5a5a5a
    call TASK_GATE:0
    CHECK eax, 0x0badf00d, "CALL through a task gate restored the caller's registers on return"
    CHECK ebx, 0x5a5a5a5a, "the caller's EBX came back from its TSS"
    CHECK dword [nested_result], 1, "the nested task ran"
    CHECK dword [nested_flags], 0x4000, "the nested task ran with EFLAGS.NT set"
    CHECK word [nested_tss], TSS_SEL, "its TSS's back link names the caller"
    str ax
    CHECK ax, TSS_SEL, "IRET switched TR back to the calling task"
    mov al, [gdt + TSS_NESTED + 5]
    CHECK al, 0x89, "IRET left the nested TSS available (not busy)"
    mov eax, cr0
    and eax, 8
    CHECK eax, 8, "a task switch sets CR0.TS"
    clts

    ; The double fault: #GP and #NP have no gates, #DF has a task gate to df_tss.
    mov dword [idt + 13 * 8 + 4], 0
    mov dword [idt + 11 * 8 + 4], 0
    mov word [idt + 8 * 8 + 2], TSS_DF
    mov byte [idt + 8 * 8 + 5], GATE_TASK
    mov eax, 0x11111111
    mov ax, EMPTY_SLOT
faulting_load:
    mov ds, ax
    FAIL "loading an empty GDT slot did not fault"

nested_task:
    mov dword [nested_result], 1
    pushfd
    pop eax
    and eax, 0x4000
    mov [nested_flags], eax
    mov eax, 0x12345678                 ; the caller must not see this
    iretd
    FAIL "the nested task was resumed"

double_fault_task:
    pop eax                             ; the #DF error code, on this task's stack
    CHECK eax, 0, "the #DF task got error code 0 on its own stack"
    CHECK esp, df_stack_top, "the #DF task runs on the stack from its TSS"
    str ax
    CHECK ax, TSS_DF, "TR names the #DF task"
    CHECK word [df_tss], TSS_SEL, "the #DF task's back link names the faulting task"
    CHECK dword [tss + 0x20], faulting_load, "the faulting task's saved EIP is the faulting MOV DS"
    CHECK dword [tss + 0x28], 0x11110000 | EMPTY_SLOT, "the faulting task's EAX was saved in its TSS"
    pushfd
    pop eax
    and eax, 0x4000
    CHECK eax, 0x4000, "the #DF task is nested (NT)"
    jmp pass

section .bss
nested_result: resd 1
nested_flags:  resd 1
alignb 16
nested_tss: resb 104
alignb 16
df_tss:     resb 104
alignb 16
    resb 2048
nested_stack_top:
    resb 2048
df_stack_top:
