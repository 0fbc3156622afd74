/* Runs the bench32 workload on the host: the reference checksums for the tests. */
#include <stdio.h>
#include <stdlib.h>
#include "workload.h"

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        unsigned iterations = (unsigned)strtoul(argv[i], NULL, 10);
        printf("%u %08x\n", iterations, workload(iterations));
    }
    return 0;
}
