/*
 * convert_pfunit.c - unit check of lib/perfetto.c and lib/gzout.c: writes a
 * trace that uses every encoder function (descriptors, interned begin, plain
 * begin, ends with annotations, instants, counters, a restarted sequence,
 * names long enough to need multi-byte lengths and truncation) to argv[1]
 * (gzip when it ends in .gz). t_convert.py checks it with check_perfetto.py
 * and compares the summary with what is printed on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gzout.h"
#include "perfetto.h"

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    size_t n = strlen(argv[1]);
    int gz = n > 3 && !strcmp(argv[1] + n - 3, ".gz");
    char err[512];
    struct sf_out *o = sf_out_open(argv[1], gz ? 1 : 0, 0, err, sizeof err);
    if (!o) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t t0 = 1000000000ull;
    sf_out_room(o, PF_SMALL_MAX);
    o->p = pf_preamble(o->p, t0, 1700000000000000000ull);
    const char cmd[] = "prog\0--flag\0arg";
    sf_out_room(o, pf_process_max(sizeof cmd));
    o->p = pf_process_track(o->p, 100, 42, "prog", cmd, sizeof cmd, t0);
    sf_out_room(o, PF_SMALL_MAX * 2);
    o->p = pf_thread_track(o->p, 101, 42, 42, "main", t0);
    o->p = pf_thread_track(o->p, 102, 42, 43, NULL, t0);
    sf_out_room(o, PF_SMALL_MAX * 2);
    o->p = pf_thread_track(o->p, 102, 42, 43, "worker", t0 + 5);
    o->p = pf_counter_track(o->p, 103, 100, "heap bytes", t0);

    /* a 300-byte name (2-byte lengths) and a 40000-byte one (cut) */
    static char longname[40001];
    memset(longname, 'x', sizeof longname - 1);
    memcpy(longname, "\xc3\xa9long", 6);
    struct pf_seq a = {.id = 2, .track_uuid = 101};
    struct pf_seq b = {.id = 3, .track_uuid = 102};
    uint64_t t = t0 + 10;
    const uint64_t args[6] = {1, 0xffffffffffffffffull, 3, 4, 5, 6}, ret = 0x1234;
    long slices = 0;
    for (int round = 0; round < 20000; round++) {
        sf_out_room(o, pf_begin_def_max(40000, 8) + 8 * PF_SMALL_MAX);
        if (round == 0) {
            o->p = pf_slice_begin_def(o->p, &a, t, 1, "main", 4, "/src/a.c", 8, 10, NULL, 0);
            o->p =
                pf_slice_begin_def(o->p, &a, t += 3, 2, longname, 300, "/src/a.c", 8, 20, args, 3);
            o->p = pf_slice_begin_def(o->p, &a, t += 3, 3, longname, 40000, NULL, 0, 0, NULL, 0);
        } else {
            o->p = pf_slice_begin(o->p, &a, t, 1, 1, NULL, 0);
            o->p = pf_slice_begin(o->p, &a, t += 3, 2, 1, args, 6);
            o->p = pf_slice_begin(o->p, &a, t += 3, 3, 0, NULL, 0);
        }
        slices += 3;
        o->p = pf_slice_end(o->p, &a, t += 1000, 0, 0, NULL);
        o->p = pf_slice_end(o->p, &a, t += 1, PF_END_UNFINISHED, 0, &ret);
        o->p = pf_slice_end(o->p, &a, t += 200, 0, round == 7 ? 12 : 0, NULL);
        sf_out_room(o, pf_begin_def_max(6, 0) + 4 * PF_SMALL_MAX + 64);
        if (!b.started)
            o->p = pf_seq_start(o->p, &b, t);
        o->p = pf_counter(o->p, 9, t + 1, 103, round * 16);
        o->p = pf_slice_begin_def(o->p, &b, t + 2, 1, "worker", 6, NULL, 0, 0, NULL, 0);
        o->p = pf_instant(o->p, &b, t + 3, "sftrace: 5 records lost");
        o->p = pf_slice_end(o->p, &b, t + 4, 0, 0, NULL);
        slices++;
        if (round % 1000 == 999)
            b.started = 0; /* restart: clear, redefine */
        t += 50;
    }
    uint64_t bytes;
    if (sf_out_close(o, &bytes, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("slices %ld\nbytes %llu\n", slices, (unsigned long long)bytes);
    return 0;
}
