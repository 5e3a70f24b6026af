//! Opt a Rust program in to sftrace function-call tracing.
//!
//! A drop-in replacement for the published `sftrace-setup` 0.1.2, with the
//! same API ([`setup`] and [`SftraceAllocator`]) and no dependencies. Build
//! the program with XRay instrumentation (`-Zinstrument-xray=always`), call
//! [`setup`] early in `main` (or from a constructor), and run it with
//! `SFTRACE_OUTPUT_FILE=sf.log`. Without that variable the runtime patches
//! nothing and records nothing.
//!
//! Unlike 0.1.2, [`SftraceAllocator<A>`] really allocates with `A` (0.1.2
//! always used the system allocator, whatever `A` was).
//!
//! The build script links `libsftrace.so` from `SFTRACE_DYLIB_DIR`, or from
//! the directory of the runtime that `sftrace record --print-solib` prints.

#![no_std]

use core::alloc::{GlobalAlloc, Layout};

unsafe extern "C" {
    fn sftrace_setup(
        entry_slot: unsafe extern "C" fn(),
        exit_slot: unsafe extern "C" fn(),
        tailcall_slot: unsafe extern "C" fn(),
    );

    fn sftrace_alloc_event(kind: u8, size: usize, align: usize, ptr: *mut u8);
}

/// `sftrace_alloc_event` kinds.
const ALLOC: u8 = 1;
const DEALLOC: u8 = 2;
const REALLOC_NEW: u8 = 3;
const REALLOC_OLD: u8 = 4;

// The slots: three 16-byte functions (a return padded with no-ops), 16-byte
// aligned, inside the object that links this crate, so within rel32 reach of
// its XRay sleds. The runtime may rewrite them. They are assembly rather than
// naked functions because stable Rust cannot align a function to 16 bytes.
// They are hidden, so every executable or shared library that links the crate
// has its own; the major version in their names keeps two incompatible
// versions of the crate apart.
macro_rules! slots {
    ($progbits:literal, $function:literal, $body:literal) => {
        core::arch::global_asm!(concat!(
            ".pushsection .text.sftrace_setup_slots,\"ax\",", $progbits, "\n",
            ".p2align 4\n",
            slots!(@one "sftrace_setup_0_1_entry_slot", $function, $body),
            slots!(@one "sftrace_setup_0_1_exit_slot", $function, $body),
            slots!(@one "sftrace_setup_0_1_tailcall_slot", $function, $body),
            ".popsection\n",
        ));
    };
    (@one $name:literal, $function:literal, $body:literal) => {
        concat!(
            ".globl ", $name, "\n",
            ".hidden ", $name, "\n",
            ".type ", $name, ", ", $function, "\n",
            $name, ":\n",
            $body,
            ".size ", $name, ", 16\n",
        )
    };
}

#[cfg(target_arch = "x86_64")]
slots!("@progbits", "@function", "ret\n.fill 15, 1, 0x90\n");

#[cfg(target_arch = "aarch64")]
slots!("%progbits", "%function", "ret\n.fill 3, 4, 0xd503201f\n");

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe extern "C" {
    fn sftrace_setup_0_1_entry_slot();
    fn sftrace_setup_0_1_exit_slot();
    fn sftrace_setup_0_1_tailcall_slot();
}

/// Enable tracing of the executable or shared library this crate is linked
/// into, when the program runs with `SFTRACE_OUTPUT_FILE` set. Call it as
/// early as possible; functions already running when it is called are
/// recorded from their next call on. Safe to call more than once, and from
/// any thread; with `SFTRACE_SETUP_THREAD_ONLY` set, only the threads that
/// called it are recorded.
#[inline(always)]
pub fn setup() {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    unsafe {
        sftrace_setup(
            sftrace_setup_0_1_entry_slot,
            sftrace_setup_0_1_exit_slot,
            sftrace_setup_0_1_tailcall_slot,
        );
    }
}

#[inline(always)]
fn event(kind: u8, size: usize, align: usize, ptr: *mut u8) {
    unsafe { sftrace_alloc_event(kind, size, align, ptr) }
}

/// A global allocator that allocates with `A` and records every allocation,
/// deallocation and reallocation in the trace (`sftrace dump` kinds `alloc`,
/// `free`, `realloc-alloc` and `realloc-free`).
///
/// ```ignore
/// #[global_allocator]
/// static A: sftrace_setup::SftraceAllocator<std::alloc::System> =
///     sftrace_setup::SftraceAllocator(std::alloc::System);
/// ```
///
/// A block is reported as freed before `A` frees it, so that another thread
/// that gets the same address back is always reported after. A failed
/// allocation (null) is not reported; a failed reallocation is reported as
/// the old block freed and allocated again, which leaves the heap as it was.
#[derive(Debug, Default, Clone, Copy)]
pub struct SftraceAllocator<A: GlobalAlloc>(pub A);

unsafe impl<A: GlobalAlloc> GlobalAlloc for SftraceAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            event(ALLOC, layout.size(), layout.align(), p);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            event(ALLOC, layout.size(), layout.align(), p);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        event(DEALLOC, layout.size(), layout.align(), ptr);
        unsafe { self.0.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        event(REALLOC_OLD, layout.size(), layout.align(), ptr);
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if p.is_null() {
            event(REALLOC_NEW, layout.size(), layout.align(), ptr);
        } else {
            event(REALLOC_NEW, new_size, layout.align(), p);
        }
        p
    }
}
