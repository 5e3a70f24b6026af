// calls_panic.rs - Rust panics caught by catch_unwind, for the call engine's
// unwinding rule (tests/t_calls.py).
//
// ROUNDS times, main calls catch_unwind(|| dive(DEPTH, i)); dive recurses
// down to dive(0), which calls leaf(i); leaf panics when i % 3 == 0 (a
// quiet panic hook), else returns. After each round main calls after_catch
// once. Per round: DEPTH+1 dive entries, one leaf entry, one after_catch
// entry and exit; in panicking rounds no dive or leaf exit.
// Prints "pid", "tid" (as the OS gives them), "rounds", "depth", "panics".
use std::panic;

const ROUNDS: u64 = 30;
const DEPTH: u64 = 6;

#[inline(never)]
fn leaf(i: u64) -> u64 {
    if i % 3 == 0 {
        panic!("round {}", i);
    }
    std::hint::black_box(i) * 2
}

#[inline(never)]
fn dive(n: u64, i: u64) -> u64 {
    if n == 0 {
        return leaf(i);
    }
    let r = dive(n - 1, i);
    std::hint::black_box(r) + 1
}

#[inline(never)]
fn after_catch(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

fn main() {
    panic::set_hook(Box::new(|_| {}));
    let mut acc = 0u64;
    let mut panics = 0u64;
    for i in 0..ROUNDS {
        let r = panic::catch_unwind(|| dive(DEPTH, i));
        if r.is_err() {
            panics += 1;
        }
        acc = acc.wrapping_add(after_catch(r.unwrap_or(0)));
    }
    let tid = unsafe { libc_gettid() };
    println!("pid {}", std::process::id());
    println!("tid {}", tid);
    println!("rounds {} depth {} panics {} acc {}", ROUNDS, DEPTH, panics, acc);
}

extern "C" {
    fn gettid() -> i32;
}

unsafe fn libc_gettid() -> i32 {
    gettid()
}
