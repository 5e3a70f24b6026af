// fdr_start.cc - start and stop compiler-rt's XRay FDR mode from the
// workload's main, through the API in <xray/xray_log_interface.h> (the
// headers are C++, hence this file). Buffers are sized from the exact number
// of events the workload will produce, with room to spare, so FDR never
// drops anything; bench.py checks the log's record count (fdrcount.c).
// Environment: XRAY_OPTIONS="patch_premain=false xray_mode=xray-fdr ...",
// XRAY_FDR_OPTIONS="func_duration_threshold_us=0".
#include <xray/xray_interface.h>
#include <xray/xray_log_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" [[clang::xray_never_instrument]] void bench_fdr_start(uint64_t events, int threads)
{
    // 8 bytes per function record, plus metadata (new buffer, wall clock,
    // pid, CPU changes, TSC wraps): 1.5x plus a few buffers per thread.
    const uint64_t bufsize = 1 << 20;
    uint64_t nbuf = events * 8 * 3 / 2 / bufsize + 4 * (uint64_t)threads + 16;
    char cfg[128];
    snprintf(cfg, sizeof cfg, "buffer_size=%llu:buffer_max=%llu", (unsigned long long)bufsize,
             (unsigned long long)nbuf);
    if (__xray_log_select_mode("xray-fdr") != XRayLogRegisterStatus::XRAY_REGISTRATION_OK) {
        fprintf(stderr, "fdr: cannot select xray-fdr\n");
        exit(3);
    }
    if (__xray_log_init_mode("xray-fdr", cfg) != XRayLogInitStatus::XRAY_LOG_INITIALIZED) {
        fprintf(stderr, "fdr: cannot initialize xray-fdr with %s\n", cfg);
        exit(3);
    }
    if (__xray_patch() != XRayPatchingStatus::SUCCESS) {
        fprintf(stderr, "fdr: __xray_patch failed\n");
        exit(3);
    }
}

extern "C" [[clang::xray_never_instrument]] void bench_fdr_stop(void)
{
    if (__xray_log_finalize() != XRayLogInitStatus::XRAY_LOG_FINALIZED) {
        fprintf(stderr, "fdr: finalize failed\n");
        exit(3);
    }
    if (__xray_log_flushLog() != XRayLogFlushStatus::XRAY_LOG_FLUSHED) {
        fprintf(stderr, "fdr: flush failed\n");
        exit(3);
    }
    __xray_unpatch();
}
