/*
 * bench32: the 32-bit compute workload of `vmmkit bench cpu`. Each iteration fills a
 * buffer from a linear congruential generator, takes its CRC-32 (bitwise, no table),
 * counts primes with a sieve and insertion-sorts 256 words; the results fold into one
 * checksum that the host compares with a native run of the same C code.
 *
 * Built freestanding (gcc -m32 -ffreestanding -O2): no libc, output on COM1, exit through
 * isa-debug-exit. The iteration count comes from the multiboot command line
 * ("iterations=N"); `bench32-native.c` runs the same workload on the host.
 */
#include "workload.h"

#define COM1 0x3f8
#define DEBUG_EXIT 0xf4

static inline void outb(unsigned short port, unsigned char value) {
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline unsigned char inb(unsigned short port) {
    unsigned char value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static void putc_serial(char c) {
    for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++) {
    }
    outb(COM1, (unsigned char)c);
}

static void puts_serial(const char *s) {
    while (*s) putc_serial(*s++);
}

static void put_hex(unsigned value) {
    for (int shift = 28; shift >= 0; shift -= 4) putc_serial("0123456789abcdef"[(value >> shift) & 0xf]);
}

static void put_decimal(unsigned value) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) putc_serial(digits[--n]);
}

struct multiboot_info {
    unsigned flags, mem_lower, mem_upper, boot_device, cmdline;
};

/* Finds "iterations=N" in the command line; 1 when absent. */
static unsigned iterations_from(const char *command_line) {
    static const char key[] = "iterations=";
    for (const char *p = command_line; *p; p++) {
        int i = 0;
        while (key[i] && p[i] == key[i]) i++;
        if (key[i] == 0) {
            unsigned value = 0;
            for (p += i; *p >= '0' && *p <= '9'; p++) value = value * 10 + (unsigned)(*p - '0');
            return value ? value : 1;
        }
    }
    return 1;
}

void kmain(unsigned magic, const struct multiboot_info *info) {
    unsigned iterations = 1;
    if (magic == 0x2badb002 && (info->flags & 4)) iterations = iterations_from((const char *)info->cmdline);
    puts_serial("bench32 start iterations=");
    put_decimal(iterations);
    puts_serial("\r\n");
    unsigned checksum = workload(iterations);
    puts_serial("bench32 done iterations=");
    put_decimal(iterations);
    puts_serial(" checksum=");
    put_hex(checksum);
    puts_serial("\r\n");
    outb(DEBUG_EXIT, 0x10);
    for (;;) __asm__ volatile("cli; hlt");
}
