/*
 * fuzz_log.c - libFuzzer harness for the log reader (lib/logread.c) and the
 * packed-record decoder (common/pack.h): everything `sftrace dump` and
 * `convert` do with a log short of symbols and output.
 *
 * Each input is read twice, as a regular file (a memfd: prescan, sizes
 * known) and, when it fits in a pipe's buffer, through a pipe (no prescan, no
 * file size: truncation is only seen at the end; with a skip filter on
 * EVENTS chunks), and every chunk, event, object lookup and clock
 * conversion is exercised. A crash, a sanitizer
 * report, a leak or a hang is a finding; warnings are expected. Built and run
 * by `make fuzz` (see tests/fuzz/README.md).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "logread.h"

struct counts {
    uint64_t warnings, chunks, events, resolved;
    uint64_t sink;
};

static void on_warn(void *arg, const char *msg)
{
    struct counts *n = arg;
    n->warnings++;
    n->sink += strlen(msg); /* touch the whole message */
}

/* The call engine's kind of filter (sf_log_set_skip): odd seq numbers. */
static int skip_odd(void *ctx, const struct sf_chunkv *c)
{
    (void)ctx;
    return c->u.events->seq & 1;
}

static void read_log(const char *path, int prescan, int skip, struct counts *n)
{
    char err[SF_ERRLEN];
    struct sf_log *log = sf_log_open(path, err, sizeof err);
    if (!log)
        return;
    sf_log_set_warn(log, on_warn, n);
    if (skip)
        sf_log_set_skip(log, skip_odd, NULL);
    if (prescan)
        sf_log_prescan(log);
    struct sf_map last = {0}; /* as dump carries last_fid over chunks */
    struct sf_chunkv c;
    while (sf_log_next(log, &c) > 0) {
        n->chunks++;
        if (c.h->type == SF_CHUNK_PROCESS)
            n->sink += strlen(c.img->name) + strlen(c.img->exe) + c.img->cmdline_len;
        if (c.h->type == SF_CHUNK_OBJECT)
            n->sink += strlen(c.obj->path) + c.obj->build_id_len;
        if (c.h->type == SF_CHUNK_THREAD)
            n->sink += strlen(c.thread_name);
        if (c.h->type != SF_CHUNK_EVENTS)
            continue;
        uint64_t key = (uint64_t)c.img->id << 32 | c.u.events->tid;
        uint64_t *lf = sf_map_get(&last, key, 0);
        struct sf_evdec d;
        struct sf_event ev;
        sf_evdec_init(&d, &c);
        if (lf)
            d.last_fid = (uint32_t)(*lf - 1);
        while (sf_evdec_next(&d, &ev)) {
            n->events++;
            n->sink += (uint64_t)sf_log_ns(log, c.img, ev.ts) + ev.offset;
            uint32_t idx;
            struct sf_obj *o = sf_image_obj(c.img, ev.fid, &idx);
            if (o) {
                n->resolved++;
                n->sink += o->func_addr[idx];
            }
            if (ev.kind == SF_KIND_EXT)
                for (uint32_t i = 0; i < ev.nwords && i < 6; i++)
                    n->sink += ev.v[i];
        }
        if (d.last_fid != SF_FID_NONE)
            *sf_map_get(&last, key, 1) = (uint64_t)d.last_fid + 1;
    }
    struct sf_clockinfo ci;
    sf_log_clockinfo(log, &ci);
    struct sf_log_damage dm;
    sf_log_damage(log, &dm);
    char sum[SF_ERRLEN];
    if (sf_log_summary(log, sum, sizeof sum))
        n->sink += strlen(sum);
    for (size_t i = 0; i < sf_log_nimages(log); i++)
        n->sink += sf_log_image_at(log, i)->nobjs;
    sf_map_free(&last);
    sf_log_close(log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct counts n = {0};
    char path[64];
    int fd = memfd_create("sftrace-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        read_log(path, 1, 0, &n);
    }
    close(fd);

    int p[2];
    if (size <= 60000 && pipe(p) == 0) {
        if (write(p[1], data, size) == (ssize_t)size) {
            close(p[1]);
            p[1] = -1;
            snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
            read_log(path, 1, 1, &n); /* the prescan fails on a pipe: read on */
        }
        close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
    }
    return 0;
}
