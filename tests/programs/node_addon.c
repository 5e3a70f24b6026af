/*
 * node_addon.c - a Node-API addon built with XRay: Node loads it with dlopen,
 * and calls fib() from the main thread and from a worker thread.
 */
#include <node_api.h>
__attribute__((noinline)) static int fib(int n)
{
    if (n < 2)
        return n;
    int a = fib(n - 1), b = fib(n - 2);
    __asm__ volatile("" : "+r"(a), "+r"(b)); /* keeps both calls real calls */
    return a + b;
}
static napi_value Fib(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    int32_t n = 0;
    napi_value r;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    napi_get_value_int32(env, argv[0], &n);
    napi_create_int32(env, fib(n), &r);
    return r;
}
NAPI_MODULE_INIT()
{
    napi_value fn;
    napi_create_function(env, "fib", NAPI_AUTO_LENGTH, Fib, NULL, &fn);
    napi_set_named_property(env, exports, "fib", fn);
    return exports;
}
