//! rayon_flows MODE: rayon work whose cross-thread jobs the program counts
//! itself, printed as `cross N` (N = jobs run on a thread other than the
//! one that made them available, install from main included).
//!   join   pfib(n) with rayon::join inside pool.install
//!   scope  pool.scope with spawns (heap jobs) inside pool.install
//!   iter   par_iter().map().reduce() inside pool.install (prints `cross ?`:
//!          rayon hides its splits; the test pairs them from the trace)
//!   work   pfib for the benchmark (bench/flows.py), prints the result
//! FLOWS_WORK set: no sleeps (they make steals likely in the tests)
use std::sync::atomic::{AtomicUsize, Ordering};

static CROSS: AtomicUsize = AtomicUsize::new(0);

#[inline(never)]
fn pfib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    if n == 3 && std::env::var_os("FLOWS_WORK").is_none() {
        // sleeping (no events) lets idle workers steal the other half
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let me = rayon::current_thread_index();
    let (a, b) = rayon::join(
        || pfib(n - 1),
        || {
            if rayon::current_thread_index() != me {
                CROSS.fetch_add(1, Ordering::Relaxed);
            }
            pfib(n - 2)
        },
    );
    a + b
}

#[inline(never)]
fn leaf(i: u64) -> u64 {
    (0..10).fold(i, |a, x| a.wrapping_mul(31).wrapping_add(x))
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "join".into());
    let n: u64 = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(16);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    // install from main (not a pool thread): one injected job, run by a worker
    CROSS.fetch_add(1, Ordering::Relaxed);
    match mode.as_str() {
        "join" | "work" => {
            let r = pool.install(|| pfib(n));
            println!("fib {}", r);
        }
        "scope" => {
            let r = AtomicUsize::new(0);
            pool.install(|| {
                pool.scope(|s| {
                    for i in 0..n {
                        let me = rayon::current_thread_index();
                        let r = &r;
                        s.spawn(move |_| {
                            if rayon::current_thread_index() != me {
                                CROSS.fetch_add(1, Ordering::Relaxed);
                            }
                            // sleeping (no events) gives the other workers time to steal
                            std::thread::sleep(std::time::Duration::from_millis(2));
                            r.fetch_add(leaf(i) as usize & 1, Ordering::Relaxed);
                        });
                    }
                })
            });
            println!("odd {}", r.load(Ordering::Relaxed));
        }
        "iter" => {
            use rayon::prelude::*;
            let v: Vec<u64> = (0..n * 64).collect();
            let sleepy = std::env::var_os("FLOWS_WORK").is_none();
            let r = pool.install(|| v.par_iter().map(|&x| {
                if sleepy {
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                leaf(x)
            }).reduce(|| 0, |a, b| a ^ b));
            println!("xor {}", r);
            println!("cross ?");
            return;
        }
        _ => panic!("mode join, scope, iter or work"),
    }
    println!("cross {}", CROSS.load(Ordering::Relaxed));
}
