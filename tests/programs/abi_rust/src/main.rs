//! abi_rust: allocations of known sizes through SftraceAllocator wrapping a
//! counting allocator. Prints what the counting allocator saw and where the
//! known blocks are, for tests/t_abi.py to compare with the trace.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use sftrace_setup::SftraceAllocator;

/// Forwards to A and counts the calls it gets.
struct Counting<A> {
    inner: A,
    allocs: AtomicUsize,
    deallocs: AtomicUsize,
    reallocs: AtomicUsize,
}

impl<A> Counting<A> {
    const fn new(inner: A) -> Self {
        Counting {
            inner,
            allocs: AtomicUsize::new(0),
            deallocs: AtomicUsize::new(0),
            reallocs: AtomicUsize::new(0),
        }
    }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocs.fetch_add(1, Relaxed);
        unsafe { self.inner.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.allocs.fetch_add(1, Relaxed);
        unsafe { self.inner.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.deallocs.fetch_add(1, Relaxed);
        unsafe { self.inner.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.reallocs.fetch_add(1, Relaxed);
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: SftraceAllocator<Counting<System>> = SftraceAllocator(Counting::new(System));

const N: usize = 10;
const BASE: usize = 4096;

/// One traced call per vector: allocates BASE + i bytes.
#[inline(never)]
fn make(i: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(black_box(BASE + i));
    v.push(i as u8);
    v
}

/// Grows a 100-byte vector to exactly 1000 bytes: one realloc.
#[inline(never)]
fn grow() -> Vec<u8> {
    let mut v: Vec<u8> = Vec::with_capacity(black_box(100));
    v.push(1);
    let p0 = v.as_ptr();
    v.reserve_exact(999);
    println!("grow {:p} {:p} {}", p0, v.as_ptr(), v.capacity());
    v
}

fn counts() -> (usize, usize, usize) {
    let c = &GLOBAL.0;
    (
        c.allocs.load(Relaxed),
        c.deallocs.load(Relaxed),
        c.reallocs.load(Relaxed),
    )
}

fn main() {
    sftrace_setup::setup();
    sftrace_setup::setup(); // twice: must not patch or record anything twice

    let mut out = String::with_capacity(2048);
    let mut vecs = Vec::with_capacity(N);
    for i in 0..N {
        vecs.push(black_box(make(i)));
    }
    for (i, v) in vecs.iter().enumerate() {
        out.push_str(&format!("vec {} {:p} {}\n", i, v.as_ptr(), v.capacity()));
    }
    let zeroed = black_box(vec![0u8; 5000]);
    out.push_str(&format!("zeroed {:p} {}\n", zeroed.as_ptr(), zeroed.len()));
    print!("{out}");
    let g = grow();
    drop(black_box(g));
    drop(black_box(zeroed));
    drop(vecs);
    drop(out);
    let (a, d, r) = counts();
    // Printed with no allocation, so the counts are final for main.
    println!("allocs {a}\ndeallocs {d}\nreallocs {r}");
}
