//! mem_rust: a known allocation pattern through SftraceAllocator, in three
//! stages (the milestones: entries of stage_one, stage_two, stage_three),
//! for tests/t_memory.py. Every block of the pattern is made by `make`.
//!
//!   stage_one:   make 1000, 2000, 3000 bytes; the 3000 one is dropped.
//!   stage_two:   make 100 bytes and grow it to exactly 1000 (one realloc);
//!                make 500 bytes and forget them (a leak).
//!   stage_three: make 4096 bytes and drop them (the pattern's peak is
//!                then: 2000 + 1000 + 1000 + 500 + 4096 = 8596 bytes);
//!                drop the 1000 bytes of stage_one.
//! At exit the pattern leaves 2000 bytes of stage_one and 1000 + 500 of
//! stage_two (`keep` is forgotten, so nothing is dropped at the end).

use std::alloc::System;
use std::hint::black_box;

use sftrace_setup::SftraceAllocator;

#[global_allocator]
static GLOBAL: SftraceAllocator<System> = SftraceAllocator(System);

#[inline(never)]
fn make(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(black_box(n));
    v.push(1);
    v
}

#[inline(never)]
fn stage_one(keep: &mut Vec<Vec<u8>>) {
    keep.push(make(1000));
    keep.push(make(2000));
    let t = make(3000);
    drop(black_box(t));
}

#[inline(never)]
fn stage_two(keep: &mut Vec<Vec<u8>>) {
    let mut v = make(100);
    v.reserve_exact(999); // len 1: capacity exactly 1000
    keep.push(black_box(v));
    std::mem::forget(black_box(make(500)));
}

#[inline(never)]
fn stage_three(keep: &mut Vec<Vec<u8>>) {
    let t = make(4096);
    drop(black_box(t));
    drop(black_box(keep.remove(0)));
}

fn main() {
    sftrace_setup::setup();
    let mut keep: Vec<Vec<u8>> = Vec::with_capacity(8);
    stage_one(&mut keep);
    stage_two(&mut keep);
    stage_three(&mut keep);
    assert_eq!(keep.len(), 2);
    assert_eq!(keep[1].capacity(), 1000);
    std::mem::forget(keep);
}
