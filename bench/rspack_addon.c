/* rspack_addon.c - the N-API face of the rspack-shaped benchmark (issue 10):
 * linked with the 100,000 generated functions of bench/gen_calls.py rspack
 * into one node addon (rspack.node), as rspack's Rust binding is one cdylib
 * that node loads with dlopen. JavaScript calls run(THREADS, ROOTS): the
 * addon starts THREADS native threads (as rspack's rayon/tokio pools do),
 * each running ROOTS call trees, and returns their checksum as a BigInt.
 * Only napi_register_module_v1 is exported (bench/rspack_addon.map), so
 * calls among the generated functions are direct, as in a Rust cdylib.
 * Built against node's own headers (/usr/include/node): nothing to fetch. */
#include <node_api.h>
#include <stdint.h>

uint64_t gen_run_threads(int nth, uint64_t n);

static napi_value fail(napi_env env, const char *msg)
{
    napi_throw_error(env, NULL, msg);
    return NULL;
}

static napi_value run(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2], out;
    int32_t nth;
    int64_t n;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
        napi_get_value_int32(env, argv[0], &nth) != napi_ok ||
        napi_get_value_int64(env, argv[1], &n) != napi_ok)
        return fail(env, "usage: run(THREADS, ROOTS)");
    if (nth < 1 || nth > 64 || n < 0)
        return fail(env, "run: THREADS must be 1..64 and ROOTS >= 0");
    uint64_t sum = gen_run_threads(nth, (uint64_t)n);
    if (napi_create_bigint_uint64(env, sum, &out) != napi_ok)
        return fail(env, "run: cannot make the result");
    return out;
}

NAPI_MODULE_INIT()
{
    napi_value fn;
    if (napi_create_function(env, "run", NAPI_AUTO_LENGTH, run, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, "run", fn) != napi_ok)
        return NULL;
    return exports;
}
