; pgm-monitor: guest accesses that physical access handlers must see, for
; apps/cli/test/pgm-handlers.test.ts. The test registers a write handler over the RAM page
; MONITORED and an MMIO device at MMIO_BASE (unassigned space otherwise) before it runs.
; The guest reads the monitored page (those reads must not leave the fast path), writes it
; with a byte, a word, a dword, a STOSD and a dword that straddles into the next page, reads
; every value back, then writes, reads and writes the device. Exit status 33 when every
; value read back is right and the device answered as the test's device does (byte i of the
; device reads as 0xA0 + i), 35 otherwise.
bits 32

MULTIBOOT_MAGIC equ 0x1badb002
MULTIBOOT_FLAGS equ 0x00000003
DEBUG_EXIT_PORT equ 0xf4
EXIT_SUCCESS    equ 0x10
EXIT_FAILURE    equ 0x11

MONITORED       equ 0x300000            ; one page of RAM under the test's write handler
MMIO_BASE       equ 0xd0000000          ; the test's MMIO device

section .multiboot
align 4
    dd MULTIBOOT_MAGIC
    dd MULTIBOOT_FLAGS
    dd -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

section .text
global _start
_start:
    mov esp, stack_top
    ; Reads of the monitored page: 1024 dwords (RAM starts zeroed, so the sum is 0).
    xor eax, eax
    mov esi, MONITORED
    mov ecx, 1024
.sum:
    add eax, [esi]
    add esi, 4
    loop .sum
    test eax, eax
    jnz .fail

    ; The writes the handler must see, in this order.
    mov byte [MONITORED + 0x10], 0x11
    mov word [MONITORED + 0x20], 0x2233
    mov dword [MONITORED + 0x30], 0x44556677
    mov edi, MONITORED + 0x40
    mov eax, 0x8899aabb
    cld
    stosd
    mov dword [MONITORED + 0xffe], 0xccddeeff ; two bytes monitored, two on the next page

    ; The writes landed (the handler lets them through).
    cmp byte [MONITORED + 0x10], 0x11
    jne .fail
    cmp word [MONITORED + 0x20], 0x2233
    jne .fail
    cmp dword [MONITORED + 0x30], 0x44556677
    jne .fail
    cmp dword [MONITORED + 0x40], 0x8899aabb
    jne .fail
    cmp dword [MONITORED + 0xffe], 0xccddeeff
    jne .fail

    ; The device: a dword write, a dword read, a byte write.
    mov dword [MMIO_BASE + 0x10], 0xcafebabe
    mov eax, [MMIO_BASE + 0x20]
    cmp eax, 0xc3c2c1c0
    jne .fail
    mov byte [MMIO_BASE + 0x1], 0x5a

    mov al, EXIT_SUCCESS
    out DEBUG_EXIT_PORT, al
    jmp .halt
.fail:
    mov al, EXIT_FAILURE
    out DEBUG_EXIT_PORT, al
.halt:
    cli
    hlt
    jmp .halt

section .bss
align 16
    resb 4096
stack_top:
