/* live_windows.c - a program driven line by line on stdin that reports its
 * progress on stdout, for live recording control (t_live.py).
 *
 *   run N      outer() calls work() N times; then "ran N"
 *   hold       enters held(), says "held", waits for the line "release"
 *              inside it, then calls work() twice and returns; then "released"
 *   spin       a thread starts calling spin_a() -> spin_b() in a loop; "spinning"
 *   unspin     it stops; "unspun CALLS" (spin_a calls it made)
 *   spun       "spun CALLS": spin_a calls that have returned so far
 *   pid        "pid PID"
 *   sled       "sled XXXX": the first two bytes of work() in hex (its entry
 *              sled: eb09 as XRay left it, 41ba patched by the runtime)
 *   jobs N S   job(i) for i < N; job(S) sleeps 300 ms, the others return at
 *              once; then "jobs N"
 *   rare       calls rare() once; then "rare"
 *   load PATH  dlopen(PATH) (an instrumented plugin.c); "loaded"
 *   plugsled   "plugsled XXXX": the first two bytes of its plugin_work()
 *   plug N     plugin_work(i) for i < N; then "plugged N SUM"
 *   unload     dlclose; "unloaded 1" if the object is gone
 *   mload PATH dlmopen(LM_ID_NEWLM, PATH): the plugin in a namespace of its
 *              own (plugsled, plug and unload then use it); "mloaded"
 *   bgloop PATH a thread loads PATH, calls plugin_work(i) for i < 20 (0.5 ms
 *              apart) and unloads it, over and over, checking each result;
 *              "bglooping"
 *   loadloop N PATH  N times: load PATH, call plugin_work(1), unload it;
 *              then "looped N BAD" (BAD: wrong results)
 *   bgstop     it stops; "bgstopped ROUNDS BAD" (BAD: wrong results)
 *   sigs       "sigs N": SIGWINCH signals received so far
 *   phdrhold   inside a dl_iterate_phdr callback (which holds the dynamic
 *              linker's list lock) says "phdrheld" and waits for the line
 *              "release"; then "phdrreleased"
 *   fork N     a child calls outer(N), says "child ran N sled XXXX" and
 *              exits 7 (exit(), so atexit and destructors run); the parent
 *              waits for it and says "forked STATUS"
 *   spawn      a child calls outer(1) and waits for a signal; "spawned PID"
 *   exec       exec's this program again (argv[0]), which goes on reading
 *              the same input; the new image says "execd" first
 *   abort      abort()
 *   quit       exits 0
 * Every report is written after the calls it reports have returned. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;
static volatile int spinning;
static pthread_t spinner;
static unsigned long spun;

__attribute__((noinline)) void work(unsigned long i)
{
    sink += i * 3;
}

__attribute__((noinline)) void outer(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        work(i);
}

static char line[256];

static int next_line(void)
{
    if (!fgets(line, sizeof line, stdin))
        return 0;
    line[strcspn(line, "\n")] = 0;
    return 1;
}

static void say(const char *fmt, unsigned long v)
{
    printf(fmt, v);
    fflush(stdout);
}

__attribute__((noinline)) void held(void)
{
    say("held%.0lu\n", 0);
    while (next_line() && strcmp(line, "release"))
        ;
    work(1);
    work(2);
    sink++; /* not a tail call */
}

__attribute__((noinline)) void spin_b(unsigned long i)
{
    sink += i;
}

__attribute__((noinline)) void spin_a(unsigned long i)
{
    spin_b(i);
    sink++; /* not a tail call */
}

__attribute__((noinline)) void job(unsigned long i, unsigned long slow)
{
    if (i == slow)
        usleep(300000);
    sink += i;
}

__attribute__((noinline)) void rare(void)
{
    sink++;
}

static void *spin_main(void *arg)
{
    (void)arg;
    while (spinning) {
        for (int k = 0; k < 100; k++) {
            spin_a(spun);
            __atomic_store_n(&spun, spun + 1, __ATOMIC_RELEASE);
        }
        usleep(100); /* a busy thread, but a log of a reasonable size */
    }
    return NULL;
}

static void *plugin;
static long (*plugin_work)(long);

static volatile int bg_on;
static pthread_t bg_thread;
static unsigned long bg_rounds, bg_bad;

static void *bg_main(void *arg)
{
    const char *path = arg;
    while (bg_on) {
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        long (*fn)(long) = h ? (long (*)(long))dlsym(h, "plugin_work") : NULL;
        for (long i = 0; i < 20; i++) {    /* open a while: the watcher patches it meanwhile */
            if (!fn || fn(i) != 2 * i + 3) /* plugin_work(x) = (x + 1) + (x + 2) */
                bg_bad++;
            usleep(500);
        }
        if (h)
            dlclose(h);
        bg_rounds++;
    }
    return NULL;
}

static volatile sig_atomic_t winches;

static void on_winch(int sig)
{
    (void)sig;
    winches++;
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    (void)data;
    say("phdrheld%.0lu\n", 0);
    while (next_line() && strcmp(line, "release"))
        ;
    return 1;
}

int main(int argc, char **argv)
{
    signal(SIGWINCH, on_winch);
    if (argc > 1 && !strcmp(argv[1], "execd"))
        say("execd%.0lu\n", 0);
    while (next_line()) {
        if (!strncmp(line, "run ", 4)) {
            unsigned long n = strtoul(line + 4, NULL, 10);
            outer(n);
            say("ran %lu\n", n);
        } else if (!strcmp(line, "hold")) {
            held();
            say("released%.0lu\n", 0);
        } else if (!strcmp(line, "spin")) {
            spinning = 1;
            pthread_create(&spinner, NULL, spin_main, NULL);
            say("spinning%.0lu\n", 0);
        } else if (!strcmp(line, "unspin")) {
            spinning = 0;
            pthread_join(spinner, NULL);
            say("unspun %lu\n", spun);
        } else if (!strcmp(line, "spun")) {
            say("spun %lu\n", __atomic_load_n(&spun, __ATOMIC_ACQUIRE));
        } else if (!strcmp(line, "pid")) {
            say("pid %lu\n", (unsigned long)getpid());
        } else if (!strcmp(line, "sled")) {
            const unsigned char *b = (const unsigned char *)(void *)work;
            say("sled %04lx\n", (unsigned long)(b[0] << 8 | b[1]));
        } else if (!strncmp(line, "jobs ", 5)) {
            char *end;
            unsigned long n = strtoul(line + 5, &end, 10), slow = strtoul(end, NULL, 10);
            for (unsigned long i = 0; i < n; i++)
                job(i, slow);
            say("jobs %lu\n", n);
        } else if (!strcmp(line, "rare")) {
            rare();
            say("rare%.0lu\n", 0);
        } else if (!strncmp(line, "load ", 5)) {
            plugin = dlopen(line + 5, RTLD_NOW | RTLD_LOCAL);
            plugin_work = plugin ? (long (*)(long))dlsym(plugin, "plugin_work") : NULL;
            say(plugin_work ? "loaded%.0lu\n" : "not loaded%.0lu\n", 0);
        } else if (!strncmp(line, "mload ", 6)) {
            plugin = dlmopen(LM_ID_NEWLM, line + 6, RTLD_NOW | RTLD_LOCAL);
            plugin_work = plugin ? (long (*)(long))dlsym(plugin, "plugin_work") : NULL;
            say(plugin_work ? "mloaded%.0lu\n" : "not loaded%.0lu\n", 0);
        } else if (!strncmp(line, "bgloop ", 7)) {
            static char path[256];
            snprintf(path, sizeof path, "%s", line + 7);
            bg_on = 1;
            pthread_create(&bg_thread, NULL, bg_main, path);
            say("bglooping%.0lu\n", 0);
        } else if (!strncmp(line, "loadloop ", 9)) {
            char *path;
            unsigned long n = strtoul(line + 9, &path, 10), bad = 0;
            path += *path == ' ';
            for (unsigned long i = 0; i < n; i++) {
                void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                long (*fn)(long) = h ? (long (*)(long))dlsym(h, "plugin_work") : NULL;
                bad += !fn || fn(1) != 5;
                if (h)
                    dlclose(h);
            }
            printf("looped %lu %lu\n", n, bad);
            fflush(stdout);
        } else if (!strcmp(line, "bgstop")) {
            bg_on = 0;
            pthread_join(bg_thread, NULL);
            printf("bgstopped %lu %lu\n", bg_rounds, bg_bad);
            fflush(stdout);
        } else if (!strcmp(line, "sigs")) {
            say("sigs %lu\n", (unsigned long)winches);
        } else if (!strcmp(line, "phdrhold")) {
            dl_iterate_phdr(phdr_cb, NULL);
            say("phdrreleased%.0lu\n", 0);
        } else if (!strcmp(line, "plugsled")) {
            const unsigned char *b = (const unsigned char *)(void *)plugin_work;
            say("plugsled %04lx\n", (unsigned long)(b[0] << 8 | b[1]));
        } else if (!strncmp(line, "plug ", 5)) {
            unsigned long n = strtoul(line + 5, NULL, 10);
            long sum = 0;
            for (unsigned long i = 0; i < n; i++)
                sum += plugin_work((long)i);
            printf("plugged %lu %ld\n", n, sum);
            fflush(stdout);
        } else if (!strcmp(line, "unload")) {
            char path[256];
            Dl_info di;
            snprintf(path, sizeof path, "%s",
                     dladdr((void *)plugin_work, &di) ? di.dli_fname : "?");
            dlclose(plugin);
            plugin_work = NULL;
            void *again = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
            say("unloaded %lu\n", again == NULL);
            if (again)
                dlclose(again);
        } else if (!strncmp(line, "fork ", 5)) {
            unsigned long n = strtoul(line + 5, NULL, 10);
            pid_t c = fork();
            if (c == 0) {
                outer(n);
                const unsigned char *b = (const unsigned char *)(void *)work;
                printf("child ran %lu sled %04x\n", n, (unsigned)(b[0] << 8 | b[1]));
                fflush(stdout);
                exit(7);
            }
            int st = 0;
            waitpid(c, &st, 0);
            say("forked %lu\n", WIFEXITED(st) ? (unsigned long)WEXITSTATUS(st) : 1000ul);
        } else if (!strcmp(line, "spawn")) {
            pid_t c = fork();
            if (c == 0) {
                outer(1);
                for (;;)
                    pause();
            }
            say("spawned %lu\n", (unsigned long)c);
        } else if (!strcmp(line, "exec")) {
            char *args[] = {argv[0], "execd", NULL};
            execv("/proc/self/exe", args);
            say("exec failed%.0lu\n", 0);
        } else if (!strcmp(line, "abort")) {
            abort();
        } else if (!strcmp(line, "quit")) {
            return 0;
        }
    }
    return 0;
}
