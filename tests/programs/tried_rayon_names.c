/* tried_rayon_names.c - the names rayon gives its job functions, for
 * tests/t_tried.py (filter --descendants on a release build): C functions
 * with the legacy-mangled Rust symbols of StackJob's execute and, with
 * -DWITH_PUSH, WorkerThread::push (which rustc inlines at -O), so the
 * suite needs no cargo for it. */
__attribute__((noinline)) void
job_execute(void *job) __asm__("_ZN82$LT$rayon_core..job..StackJob$LT$L$C$F$C$R$GT$$u20$as$u20$"
                               "rayon_core..job..Job$GT$7execute17h0123456789abcdefE");
__attribute__((noinline)) void job_execute(void *job)
{
    __asm__ volatile("" ::"r"(job));
}
#ifdef WITH_PUSH
__attribute__((noinline)) void worker_push(void *w, void *job) __asm__(
    "_ZN42$LT$rayon_core..registry..WorkerThread$GT$4push17h0123456789abcdefE");
__attribute__((noinline)) void worker_push(void *w, void *job)
{
    __asm__ volatile("" ::"r"(w), "r"(job));
}
#endif
int rl_entry(void)
{
    job_execute(0);
    return 0;
}
