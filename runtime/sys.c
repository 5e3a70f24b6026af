/*
 * sys.c - small system helpers for the runtime that never call malloc:
 * a bump arena on mmap, whole writes, file reads, clocks, thread ids.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

void *sf_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void sf_unmap(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

/* A lock-free bump allocator for small, long-lived runtime structures. */
static _Atomic(char *) arena_cur;
static _Atomic(char *) arena_end;

void *sf_alloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size > 65536)
        return sf_map(size);
    for (;;) {
        char *cur = atomic_load(&arena_cur), *end = atomic_load(&arena_end);
        if (cur && cur + size <= end) {
            if (atomic_compare_exchange_weak(&arena_cur, &cur, cur + size))
                return cur;
            continue;
        }
        char *blk = sf_map(1 << 20);
        if (!blk)
            return NULL;
        /* Publish the new block; losing the race just wastes it. */
        if (atomic_compare_exchange_strong(&arena_cur, &cur, blk + size)) {
            atomic_store(&arena_end, blk + (1 << 20));
            return blk;
        }
        sf_unmap(blk, 1 << 20);
    }
}

/* Whole reads and writes: retried on EINTR and short counts. */
static int io_all(int fd, void *buf, size_t len, int writing)
{
    char *p = buf;
    while (len) {
        ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int sf_write_all(int fd, const void *buf, size_t len)
{
    return io_all(fd, (void *)buf, len, 1);
}

int sf_read_all(int fd, void *buf, size_t len)
{
    return io_all(fd, buf, len, 0);
}

/* Move fd to a number >= 1000, out of the low numbers the program expects
 * to own; returns the descriptor to use. */
int sf_fd_high(int fd)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 1000);
    if (high < 0)
        return fd;
    close(fd);
    return high;
}

ssize_t sf_read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return (ssize_t)got;
}

uint64_t sf_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sf_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

pid_t sf_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}
