/* flows_pool.c - a hand-written thread pool for user-declared flow rules
 * (tests/t_flows.py, docs/filter-format.md "Flow rules").
 *
 *   flows_pool N   main makes N tasks (make_task returns the task pointer:
 *                  a "task" producer keyed by the return value) and submits
 *                  one job per task (submit(job): a "job" producer keyed by
 *                  argument 0); 2 workers take jobs and run them
 *                  (run_job(job): a "job" consumer, argument 0), and each
 *                  job steps its task twice (step_task(task): a "task"
 *                  consumer, argument 0); main frees the tasks at the end
 *                  (free_task: "task" retire).
 * Prints "jobs N cross C": C = jobs run by a thread other than the one
 * that submitted them (all of them: main never runs a job).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct task {
    int id, steps;
};
struct job {
    struct task *t;
    pthread_t submitter;
    struct job *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static int closed;
static atomic_int cross;

__attribute__((noinline)) struct task *make_task(int id)
{
    struct task *t = calloc(1, sizeof *t);
    t->id = id;
    return t;
}

__attribute__((noinline)) void step_task(struct task *t)
{
    t->steps++;
}

__attribute__((noinline)) void free_task(struct task *t)
{
    free(t);
}

__attribute__((noinline)) void submit(struct job *j)
{
    pthread_mutex_lock(&mu);
    j->next = NULL;
    if (tail)
        tail->next = j;
    else
        head = j;
    tail = j;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

__attribute__((noinline)) void run_job(struct job *j)
{
    if (!pthread_equal(j->submitter, pthread_self()))
        atomic_fetch_add(&cross, 1);
    step_task(j->t);
    step_task(j->t);
}

__attribute__((noinline)) static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!head && !closed)
            pthread_cond_wait(&cv, &mu);
        struct job *j = head;
        if (j) {
            head = j->next;
            if (!head)
                tail = NULL;
        }
        pthread_mutex_unlock(&mu);
        if (!j)
            return NULL;
        run_job(j);
    }
}

__attribute__((noinline)) static void produce(int n, struct job *jobs, struct task **tasks)
{
    for (int i = 0; i < n; i++) {
        tasks[i] = make_task(i);
        jobs[i].t = tasks[i];
        jobs[i].submitter = pthread_self();
        submit(&jobs[i]);
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 8;
    struct job *jobs = calloc((size_t)n, sizeof *jobs);
    struct task **tasks = calloc((size_t)n, sizeof *tasks);
    pthread_t w[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&w[i], NULL, worker, NULL);
    produce(n, jobs, tasks);
    pthread_mutex_lock(&mu);
    closed = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    for (int i = 0; i < n; i++) {
        if (tasks[i]->steps != 2)
            return 1;
        free_task(tasks[i]);
    }
    printf("jobs %d cross %d\n", n, atomic_load(&cross));
    free(jobs);
    free(tasks);
    return 0;
}
