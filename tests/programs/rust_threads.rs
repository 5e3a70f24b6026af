// rust_threads.rs - a multi-threaded Rust program for the XRay record tests.
//
// Four threads spawned with std::thread::Builder, named "rs-worker-<i>", each
// call worker() CALLS_BASE*(i+1)+i times; main calls worker() MAIN_CALLS
// times. worker() calls leaf() once per call. Both are #[inline(never)] and
// black_box keeps the loops from being folded. Each thread reports its OS
// tid, read from the /proc/thread-self link ("<pid>/task/<tid>"). Prints
// "thread <i> tid <tid> calls <n> name <name>", "main tid <tid> calls <n>",
// "pid <pid>".
use std::hint::black_box;
use std::thread;

const CALLS_BASE: u64 = 1000;
const MAIN_CALLS: u64 = 777;

fn os_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("read /proc/thread-self");
    let s = link.to_string_lossy().into_owned();
    s.rsplit('/').next().unwrap().parse().expect("tid")
}

#[inline(never)]
fn leaf(x: u64) -> u64 {
    black_box(x).wrapping_mul(2654435761).rotate_left(7)
}

#[inline(never)]
fn worker(x: u64) -> u64 {
    let r = leaf(black_box(x));
    black_box(r) ^ x
}

fn main() {
    let mut handles = Vec::new();
    for i in 0..4u64 {
        let h = thread::Builder::new()
            .name(format!("rs-worker-{}", i))
            .spawn(move || {
                let tid = os_tid();
                let n = CALLS_BASE * (i + 1) + i;
                let mut acc = 0u64;
                for k in 0..n {
                    acc = acc.wrapping_add(worker(k));
                }
                black_box(acc);
                let name = thread::current().name().unwrap_or("").to_string();
                (i, tid, n, name)
            })
            .expect("spawn");
        handles.push(h);
    }
    let mut acc = 0u64;
    for k in 0..MAIN_CALLS {
        acc = acc.wrapping_add(worker(k));
    }
    black_box(acc);
    for h in handles {
        let (i, tid, n, name) = h.join().expect("join");
        println!("thread {} tid {} calls {} name {}", i, tid, n, name);
    }
    println!("main tid {} calls {}", os_tid(), MAIN_CALLS);
    println!("pid {}", std::process::id());
}
