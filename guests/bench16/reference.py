#!/usr/bin/env python3
"""The bench16 workload in Python: reference checksums for the tests (see bench16.asm)."""
import sys

M = 0xFFFFFFFF

def rol(value, count):
    return ((value << count) | (value >> (32 - count))) & M

def workload(iterations):
    checksum = 0
    seed = 0x1234
    for iteration in range(iterations):
        buffer = bytearray(2048)
        for i in range(2048):
            seed = (seed * 25173 + 13849) & 0xFFFF
            buffer[i] = seed >> 8
        crc = 0xFFFF
        for byte in buffer:
            crc ^= byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        h = crc | (iteration << 16)
        for i in range(0, 2048, 4):
            x = int.from_bytes(buffer[i:i + 4], "little")
            h = (rol(h ^ x, 5) * 0x9E3779B1) & M
        checksum = (checksum + h) & M
        checksum = rol(checksum, 3) ^ crc
    return checksum

for argument in sys.argv[1:]:
    print(f"{int(argument)} {workload(int(argument)):08x}")
