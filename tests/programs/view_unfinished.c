/*
 * view_unfinished.c - calls that never finish, for the viewer checks
 * (t_viewers.py): thread "stuck" calls stuck_outer(), which makes
 * STUCK_CALLS calls of stuck_step() and then blocks forever in stuck_wait()
 * (entered, never left); main waits for it, makes MAIN_CALLS calls of
 * main_step() and returns while "stuck" is still inside stuck_outer() and
 * stuck_wait(). Prints "pid", "main_tid" and "stuck_tid".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <unistd.h>

#define STUCK_CALLS 4
#define MAIN_CALLS 3

static sem_t ready, never;
static volatile pid_t stuck_tid;
static volatile long sink;

__attribute__((noinline)) void stuck_step(long i)
{
    sink += i;
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void stuck_wait(void)
{
    sem_post(&ready);
    for (;;)
        sem_wait(&never);
}

__attribute__((noinline)) void stuck_outer(void)
{
    for (long i = 0; i < STUCK_CALLS; i++)
        stuck_step(i);
    stuck_wait();
}

__attribute__((noinline)) void main_step(long i)
{
    sink += i;
    __asm__ volatile("" ::: "memory");
}

static void *stuck(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "stuck");
    stuck_tid = gettid();
    stuck_outer();
    return NULL;
}

int main(void)
{
    pthread_t t;
    sem_init(&ready, 0, 0);
    sem_init(&never, 0, 0);
    pthread_create(&t, NULL, stuck, NULL);
    while (sem_wait(&ready) != 0)
        ;
    for (long i = 0; i < MAIN_CALLS; i++)
        main_step(i);
    printf("pid %d\nmain_tid %d\nstuck_tid %d\n", getpid(), gettid(), stuck_tid);
    fflush(stdout);
    return 0;
}
