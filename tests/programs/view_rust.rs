// view_rust.rs - the Rust program of the viewer checks (t_viewers.py), built
// with v0 symbol mangling: generic methods (Gear<u64>, Gear<f64>), a trait
// method (<Gear<u64> as Spin>::spin) and a recursive module function, called
// a known number of times.
//
// main: 3 x <Gear<u64>>::doubled, 2 x <Gear<f64>>::doubled,
// 4 x <Gear<u64> as Spin>::spin (each calls engine::crank once), and
// engine::depth(5) once (depth recurses to 0: 6 calls).
use std::hint::black_box;

mod engine {
    pub struct Gear<T> {
        pub teeth: T,
    }

    impl<T: Copy + std::ops::Add<Output = T>> Gear<T> {
        #[inline(never)]
        pub fn doubled(&self) -> T {
            self.teeth + self.teeth
        }
    }

    pub trait Spin {
        fn spin(&self) -> u64;
    }

    impl Spin for Gear<u64> {
        #[inline(never)]
        fn spin(&self) -> u64 {
            crank(self.teeth) * 3
        }
    }

    #[inline(never)]
    pub fn crank(n: u64) -> u64 {
        std::hint::black_box(n ^ 0x55)
    }

    #[inline(never)]
    pub fn depth(n: u64) -> u64 {
        if std::hint::black_box(n) == 0 { 0 } else { 1 + depth(n - 1) }
    }
}

use engine::Spin;

fn main() {
    let g = engine::Gear { teeth: black_box(7u64) };
    let f = engine::Gear { teeth: black_box(1.5f64) };
    let mut s = 0u64;
    let mut x = 0f64;
    for _ in 0..3 {
        s += black_box(&g).doubled();
    }
    for _ in 0..2 {
        x += black_box(&f).doubled();
    }
    for _ in 0..4 {
        s += black_box(&g).spin();
    }
    s += engine::depth(black_box(5));
    println!("s {} x {}", s, x);
}
