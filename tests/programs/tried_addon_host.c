/* tried_addon_host.c - node's shape for tests/t_tried.py: an uninstrumented
 * host that dlopens an instrumented addon (argv[1]) and runs its entry
 * pool_main with the remaining arguments, as node loads a Rust cdylib
 * (.node) whose rayon or tokio pool makes and runs the jobs.
 * usage: tried_addon_host ADDON.so ARGS... (exit status: pool_main's) */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ADDON.so ARGS...\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    int (*entry)(int, char **) = h ? (int (*)(int, char **))dlsym(h, "pool_main") : NULL;
    if (!entry) {
        fprintf(stderr, "%s: %s\n", argv[0], dlerror());
        return 2;
    }
    return entry(argc - 1, argv + 1);
}
