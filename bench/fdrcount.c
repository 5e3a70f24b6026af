/* fdrcount.c - count the function records in an XRay FDR log (version 5),
 * so the benchmark can check that FDR mode kept every event.
 *
 *   fdrcount LOG   ->   "events=N metadata=M version=V"
 *
 * Layout (compiler-rt xray_fdr_log_writer.h, llvm/XRay/FDRRecords.h): a
 * 32-byte file header, then per buffer a 16-byte BufferExtents metadata
 * record whose payload is the number of bytes of records that follow.
 * Metadata records are 16 bytes (bit 0 of the first byte set; kind in bits
 * 1..7), except custom/typed event markers, followed by their payload.
 * Function records are 8 bytes (bit 0 clear; kind in bits 1..3: enter,
 * exit, tail exit, enter with argument). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fdrcount LOG\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 16);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "fdrcount: cannot read %s\n", argv[1]);
        return 1;
    }
    memset(b + n, 0, 16);
    uint16_t version;
    memcpy(&version, b, 2);
    uint64_t kinds[4] = {0}, meta = 0;
    long p = 32;
    int bad = 0;
    while (p < n) {
        uint8_t t = b[p];
        if (!(t & 1)) {
            kinds[(t >> 1) & 3]++;
            p += 8;
            continue;
        }
        unsigned kind = (t >> 1) & 0x7f;
        meta++;
        if (kind == 5 || kind == 8) { /* custom / typed event: int32 size */
            int32_t sz;
            memcpy(&sz, b + p + 1, 4);
            p += 16 + sz;
        } else if (kind <= 9) {
            p += 16;
        } else {
            bad = 1;
            break;
        }
    }
    if (p != n)
        bad = 1;
    printf("events=%llu enter=%llu exit=%llu tail=%llu enter_arg=%llu metadata=%llu version=%u%s\n",
           (unsigned long long)(kinds[0] + kinds[1] + kinds[2] + kinds[3]),
           (unsigned long long)kinds[0], (unsigned long long)kinds[1],
           (unsigned long long)kinds[2], (unsigned long long)kinds[3], (unsigned long long)meta,
           version, bad ? " bad" : "");
    return bad;
}
