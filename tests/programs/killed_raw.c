/* killed_raw.c - raw system calls behind libc's back (t_killed.py):
 *   killed_raw fds DIR     close every descriptor with syscall(SYS_close_range),
 *                          open DIR/data under every number up to 1010, make
 *                          many calls, write one line to each descriptor
 *   killed_raw clonevm     a clone(CLONE_VM) child without its own TLS makes
 *                          100000 calls while the parent waits, then the
 *                          parent makes 10
 *   killed_raw clonetls MODE  (x86_64) a raw clone(CLONE_VM | CLONE_SETTLS)
 *                          child with a TLS of its own, made as glibc makes
 *                          a new thread's (each object's TLS image copied,
 *                          the rest zeroed, a copy of the thread block with
 *                          its self pointers set), makes 100000 calls and
 *                          ends with a raw exit; MODE "thread" adds
 *                          CLONE_THREAD (a thread of ours), "process" not (a
 *                          process sharing our memory). The parent waits,
 *                          then makes 10 calls. Prints "child <tid>". */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) void work(int i)
{
    sink += (unsigned long)i;
}

static int child_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        work(i);
    syscall(SYS_exit, 0);
    return 0;
}

#ifdef __x86_64__
/* A static TLS area like the one glibc gives a new thread: x86_64 keeps
 * each object's block below the thread pointer, the thread block at it. */
#define TCB_COPY 4096    /* more than glibc's struct pthread */
static uintptr_t tls_lo; /* lowest block start, relative to the thread pointer */
static char *new_tp;

static int tls_span(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
    if (info->dlpi_tls_data && (uintptr_t)info->dlpi_tls_data < tp &&
        tp - (uintptr_t)info->dlpi_tls_data > tls_lo)
        tls_lo = tp - (uintptr_t)info->dlpi_tls_data;
    return 0;
}

static int tls_fill(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
    if (!info->dlpi_tls_data)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS)
            continue;
        char *dst = new_tp - (tp - (uintptr_t)info->dlpi_tls_data);
        memcpy(dst, (const char *)(info->dlpi_addr + ph->p_vaddr), ph->p_filesz);
        memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    }
    return 0;
}

static char *make_tls(void)
{
    dl_iterate_phdr(tls_span, NULL);
    size_t lo = (tls_lo + 63) & ~(size_t)63;
    char *area = aligned_alloc(64, lo + TCB_COPY);
    memset(area, 0, lo);
    new_tp = area + lo;
    memcpy(new_tp, __builtin_thread_pointer(), TCB_COPY);
    ((void **)new_tp)[0] = new_tp; /* tcbhead_t.tcb */
    ((void **)new_tp)[2] = new_tp; /* tcbhead_t.self */
    dl_iterate_phdr(tls_fill, NULL);
    return new_tp;
}
#endif

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "fds";
    for (int i = 0; i < 1000; i++)
        work(i);
    if (!strcmp(mode, "fds") && argc > 2) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data", argv[2]);
        syscall(SYS_close_range, 3u, ~0u, 0u);
        int top = 2;
        while (top < 1010) {
            int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
            if (fd < 0)
                return 3;
            top = fd;
        }
        for (int i = 0; i < 300000; i++)
            work(i);
        for (int fd = 3; fd <= top; fd++)
            if (write(fd, "data\n", 5) != 5)
                return 4;
        return 0;
    }
    if (!strcmp(mode, "clonevm")) {
        size_t sz = 1 << 20;
        char *stack = malloc(sz);
        pid_t c = clone(child_main, stack + sz, CLONE_VM | SIGCHLD, NULL);
        if (c < 0)
            return 5;
        int st;
        while (waitpid(c, &st, 0) < 0)
            ;
        for (int i = 0; i < 10; i++)
            work(i);
        printf("done %d\n", WEXITSTATUS(st));
        return 0;
    }
#ifdef __x86_64__
    if (!strcmp(mode, "clonetls") && argc > 2) {
        int thread = !strcmp(argv[2], "thread");
        size_t sz = 1 << 20;
        char *stack = malloc(sz);
        char *tls = make_tls();
        static volatile pid_t ctid;
        pid_t ptid = 0;
        int flags = CLONE_VM | CLONE_SETTLS;
        flags |= thread ? CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                              CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID
                        : SIGCHLD;
        pid_t c = clone(child_main, stack + sz, flags, NULL, &ptid, tls, &ctid);
        if (c < 0)
            return 5;
        if (thread) {
            ctid = c; /* the kernel clears it (and wakes us) when the child exits */
            while (ctid)
                syscall(SYS_futex, &ctid, FUTEX_WAIT, c, NULL, NULL, 0);
        } else {
            int st;
            while (waitpid(c, &st, 0) < 0)
                ;
        }
        for (int i = 0; i < 10; i++)
            work(i);
        printf("child %d\n", (int)c);
        return 0;
    }
#endif
    return 2;
}
