/* The workload shared by the guest (bench32.c) and the host reference (bench32-native.c). */
#ifndef BENCH32_WORKLOAD_H
#define BENCH32_WORKLOAD_H

#define BUFFER_BYTES 4096
#define SIEVE_LIMIT 8192
#define SORT_WORDS 256

static unsigned char buffer[BUFFER_BYTES];
static unsigned char composite[SIEVE_LIMIT];
static unsigned words[SORT_WORDS];

static unsigned crc32(const unsigned char *p, unsigned n) {
    unsigned crc = 0xffffffffu;
    for (unsigned i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static unsigned count_primes(void) {
    unsigned count = 0;
    for (unsigned i = 0; i < SIEVE_LIMIT; i++) composite[i] = 0;
    for (unsigned i = 2; i < SIEVE_LIMIT; i++) {
        if (composite[i]) continue;
        count++;
        for (unsigned j = i * i; j < SIEVE_LIMIT; j += i) composite[j] = 1;
    }
    return count;
}

static void insertion_sort(unsigned *a, unsigned n) {
    for (unsigned i = 1; i < n; i++) {
        unsigned value = a[i];
        unsigned j = i;
        while (j > 0 && a[j - 1] > value) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = value;
    }
}

static unsigned workload(unsigned iterations) {
    unsigned checksum = 0;
    unsigned seed = 12345;
    for (unsigned iteration = 0; iteration < iterations; iteration++) {
        for (unsigned i = 0; i < BUFFER_BYTES; i++) {
            seed = seed * 1103515245u + 12345u;
            buffer[i] = (unsigned char)(seed >> 16);
        }
        checksum ^= crc32(buffer, BUFFER_BYTES);
        checksum += count_primes() * (iteration + 1);
        for (unsigned i = 0; i < SORT_WORDS; i++) {
            seed = seed * 1103515245u + 12345u;
            words[i] = seed;
        }
        insertion_sort(words, SORT_WORDS);
        checksum = (checksum << 5) ^ (checksum >> 27) ^ words[iteration % SORT_WORDS] ^ (words[SORT_WORDS - 1] / (iteration + 3));
    }
    return checksum;
}

#endif
