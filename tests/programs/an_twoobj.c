/* an_twoobj.c - a program of two objects (this one and an_twoobj_lib.so)
 * and three threads, for t_report_objs.py: the analysis commands split the
 * threads between workers and name the functions of both objects.
 *
 * Per iteration of a worker: rec x4 (rec(3) .. rec(0)), main_leaf x3,
 * lib_work x2 (rec(0)'s lib_work(3), then lib_work(2)), lib_leaf x5, and
 * twice x8 (3 under main_leaf, in this object; 5 under lib_leaf, in the
 * library). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "an_twoobj.h"

#define ITERS 200

__attribute__((noinline)) int main_leaf(int x)
{
    __asm__ volatile("");
    return twice(x) ^ 3;
}

static __attribute__((noinline)) int rec(int d)
{
    __asm__ volatile("");
    return d ? rec(d - 1) + main_leaf(d) : lib_work(3);
}

static void *worker(void *arg)
{
    long s = 0;
    for (int i = 0; i < ITERS; i++)
        s += rec(3) + lib_work(2);
    *(long *)arg = s;
    return NULL;
}

int main(void)
{
    pthread_t th[3];
    long out[3];
    for (int i = 0; i < 3; i++)
        if (pthread_create(&th[i], NULL, worker, &out[i]))
            return 1;
    long s = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        s += out[i];
    }
    printf("%ld\n", s);
    return 0;
}
