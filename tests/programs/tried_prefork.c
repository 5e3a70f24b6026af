/* tried_prefork.c - a pre-fork server's shape (nginx, apache prefork, a
 * gunicorn-like master): the master forks NKIDS workers at start and waits.
 * Each worker waits for DIR/go, calls work() N times, creates DIR/did.PID,
 * waits for DIR/end and exits. Under `record --paused` the workers are born
 * paused; `sftrace ctl WORKER start|stop` must reach them.
 * Usage: tried_prefork DIR N; prints "workers PID PID" first. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NKIDS 2

static volatile long sink;

__attribute__((noinline)) void work(long i) { sink += i; }

static void wait_for(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    while (stat(path, &st) != 0)
        usleep(5000);
}

__attribute__((noinline)) void worker(const char *dir, long n)
{
    char path[4096];
    wait_for(dir, "go");
    for (long i = 0; i < n; i++)
        work(i);
    snprintf(path, sizeof path, "%s/did.%d", dir, (int)getpid());
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
    wait_for(dir, "end");
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long n = atol(argv[2]);
    pid_t kids[NKIDS];
    for (int i = 0; i < NKIDS; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            worker(argv[1], n);
            _exit(0);
        }
    }
    printf("workers %d %d\n", (int)kids[0], (int)kids[1]);
    fflush(stdout);
    for (int i = 0; i < NKIDS; i++)
        waitpid(kids[i], NULL, 0);
    return 0;
}
