/* packbench.c - the packer alone, on recorded raw buffers: how small and
 * how cheap packing is (common/pack.h), for encoding 1 (the old one) or 2.
 *
 *   packbench [-e 1|2] [-r REPS] LOG...
 *
 * LOG is a log recorded with SFTRACE_RAW=1 (its EVENTS chunks are the
 * trampoline's raw buffers, exactly what the runtime's flush packs). Every
 * raw EVENTS chunk is packed REPS times (default 1) with the chosen
 * encoder; the sizes count what the runtime would write: the 48-byte chunk
 * header, the packed records and the padding to 8 bytes. Prints
 *   enc=E events=N chunks=C packed=B bytes_per_event=X cpu_ns_per_event=T
 * T is the thread CPU time spent in the packing calls (CLOCK_THREAD_CPUTIME_ID
 * around each chunk's REPS packs, so reading the log is not counted) divided
 * by N * REPS: with REPS of 20 or more it is the steady cost of packing a
 * buffer that is in the cache, as the runtime packs a buffer just filled.
 * For instruction counts run it under
 *   valgrind --tool=callgrind --toggle-collect=pack_chunk packbench ...
 * so only the packing is counted (bench/pack.sh does). Round trips of the
 * same logs are checked by tests/pack_roundtrip.c, not here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pack.h"

static struct sf_pack_state st;

__attribute__((noinline)) size_t pack_chunk(int enc, const uint8_t *raw, size_t len, uint32_t hi,
                                            uint8_t *out)
{
    return enc == 1 ? sf_pack1(&st, raw, len, hi, out) : sf_pack(&st, raw, len, hi, out);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "packbench: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

int main(int argc, char **argv)
{
    int enc = 2, reps = 1, i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "-e"))
            enc = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r"))
            reps = atoi(argv[i + 1]);
        else
            break;
    }
    if (i >= argc || (enc != 1 && enc != 2) || reps < 1) {
        fprintf(stderr, "usage: packbench [-e 1|2] [-r REPS] LOG...\n");
        return 2;
    }
    uint8_t *out = malloc(SF_PACK_BOUND(SF_CHUNK_MAX / 8));
    uint64_t events = 0, chunks = 0, bytes = 0, ns = 0;
    for (; i < argc; i++) {
        size_t n;
        uint8_t *b = slurp(argv[i], &n);
        for (size_t p = sizeof(struct sf_file_header); p + sizeof(struct sf_events) <= n;) {
            struct sf_events e;
            memcpy(&e, b + p, sizeof e);
            if (e.h.magic != SF_CHUNK_MAGIC || e.h.size < sizeof(struct sf_chunk) ||
                e.h.size > n - p) {
                fprintf(stderr, "packbench: %s: bad chunk at offset %zu\n", argv[i], p);
                return 1;
            }
            if (e.h.type == SF_CHUNK_EVENTS && !(e.h.flags & SF_EVENTS_PACKED) &&
                e.h.size <= SF_CHUNK_MAX / 8) {
                const uint8_t *raw = b + p + sizeof e;
                size_t len = e.h.size - sizeof e, packed = 0;
                struct timespec t0, t1;
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
                for (int r = 0; r < reps; r++)
                    packed = pack_chunk(enc, raw, len, e.tsc_hi, out);
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
                ns += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
                for (size_t k = 0; k + 8 <= len;) {
                    uint32_t w1;
                    memcpy(&w1, raw + k + 4, 4);
                    if (sf_w1_kind(w1) == SF_KIND_EXT)
                        k += 8 * (size_t)sf_w1_nwords(w1);
                    else
                        events++;
                    k += 8;
                }
                chunks++;
                bytes += sizeof e + (packed + 7) / 8 * 8;
            }
            p += e.h.size;
        }
        free(b);
    }
    printf("enc=%d events=%llu chunks=%llu packed=%llu bytes_per_event=%.3f "
           "cpu_ns_per_event=%.2f\n",
           enc, (unsigned long long)events, (unsigned long long)chunks, (unsigned long long)bytes,
           events ? (double)bytes / (double)events : 0.0,
           events ? (double)ns / (double)events / reps : 0.0);
    return 0;
}
