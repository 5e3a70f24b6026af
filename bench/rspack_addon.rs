//! rspack_addon.rs - the N-API face of the Rust variant of the rspack-shaped
//! benchmark (issue 10): the cdylib node loads (rspack_rs.node), linked with
//! the rlib of 100,000 generated functions (bench/gen_calls.py rspack-rust,
//! crate `rsgen`), as rspack's binding is one Rust cdylib built from many
//! crates. JavaScript calls run(THREADS, ROOTS): it starts THREADS native
//! threads (std::thread, as rspack's rayon and tokio pools), each running
//! ROOTS call trees from rsgen::ROOTS, and returns their checksum as a
//! BigInt: the same work, seeds and checksum as bench/rspack_addon.c's C
//! variant, so the C counting build's event count holds here too.
//!
//! No crate is fetched (nothing can be, here): the few napi_* functions used
//! are declared below and resolved from node itself when it dlopens the
//! addon; only napi_register_module_v1 is exported. This crate is built
//! without XRay sleds (only rsgen has them), so every event of a run is a
//! call of a generated function, as the C variant's glue is never traced.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

type napi_env = *mut c_void;
type napi_value = *mut c_void;
type napi_callback_info = *mut c_void;
type napi_status = c_int; // napi_ok is 0
type napi_callback = unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value;
const NAPI_AUTO_LENGTH: usize = usize::MAX;

extern "C" {
    fn napi_get_cb_info(
        env: napi_env,
        info: napi_callback_info,
        argc: *mut usize,
        argv: *mut napi_value,
        this_arg: *mut napi_value,
        data: *mut *mut c_void,
    ) -> napi_status;
    fn napi_get_value_int32(env: napi_env, value: napi_value, result: *mut i32) -> napi_status;
    fn napi_get_value_int64(env: napi_env, value: napi_value, result: *mut i64) -> napi_status;
    fn napi_create_bigint_uint64(env: napi_env, value: u64, result: *mut napi_value)
        -> napi_status;
    fn napi_throw_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    fn napi_create_function(
        env: napi_env,
        utf8name: *const c_char,
        length: usize,
        cb: napi_callback,
        data: *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_set_named_property(
        env: napi_env,
        object: napi_value,
        utf8name: *const c_char,
        value: napi_value,
    ) -> napi_status;
}

/// One thread's work: n call trees, each from a root drawn (skewed: the
/// minimum of two uniform draws) with an LCG seeded by r, as the C run().
fn run_roots(n: u64, mut r: u64) -> u64 {
    let roots = &rsgen::ROOTS;
    let len = roots.len() as u64;
    let mut x = r;
    let mut i = 0;
    while i < n {
        r = r
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (a, b) = ((r >> 20) % len, (r >> 42) % len);
        x = roots[a.min(b) as usize](x, 12);
        i += 1;
    }
    x
}

/// nth threads each run n call trees; the XOR of their results.
fn run_threads(nth: u32, n: u64) -> u64 {
    let workers: Vec<_> = (0..nth as u64)
        .map(|t| {
            let seed = 0x9E3779B97F4A7C15u64.wrapping_mul(t + 1);
            std::thread::spawn(move || run_roots(n, seed))
        })
        .collect();
    workers
        .into_iter()
        .fold(0, |sum, w| sum ^ w.join().expect("a worker panicked"))
}

unsafe fn fail(env: napi_env, msg: &'static [u8]) -> napi_value {
    napi_throw_error(env, std::ptr::null(), msg.as_ptr() as *const c_char);
    std::ptr::null_mut()
}

unsafe extern "C" fn run(env: napi_env, info: napi_callback_info) -> napi_value {
    let mut argc: usize = 2;
    let mut argv: [napi_value; 2] = [std::ptr::null_mut(); 2];
    let (mut nth, mut n): (i32, i64) = (0, 0);
    if napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    ) != 0
        || argc != 2
        || napi_get_value_int32(env, argv[0], &mut nth) != 0
        || napi_get_value_int64(env, argv[1], &mut n) != 0
    {
        return fail(env, b"usage: run(THREADS, ROOTS)\0");
    }
    if !(1..=64).contains(&nth) || n < 0 {
        return fail(env, b"run: THREADS must be 1..64 and ROOTS >= 0\0");
    }
    let sum = run_threads(nth as u32, n as u64);
    let mut out = std::ptr::null_mut();
    if napi_create_bigint_uint64(env, sum, &mut out) != 0 {
        return fail(env, b"run: cannot make the result\0");
    }
    out
}

/// Called by node when it loads the addon (the symbol NAPI_MODULE_INIT
/// defines in C): exports.run = run.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let mut f = std::ptr::null_mut();
    let name = b"run\0".as_ptr() as *const c_char;
    if napi_create_function(
        env,
        name,
        NAPI_AUTO_LENGTH,
        run,
        std::ptr::null_mut(),
        &mut f,
    ) != 0
        || napi_set_named_property(env, exports, name, f) != 0
    {
        return std::ptr::null_mut();
    }
    exports
}
