// convert_names.rs - Rust names for t_convert.py (built twice: legacy and v0
// symbol mangling): a module function, a generic function, a method of a
// generic type and a trait method, each called a known number of times. A
// "// @NAME" comment marks the line where each function is defined.
use std::hint::black_box;

mod engine {
    pub struct Gear<T> {
        pub teeth: T,
    }

    impl<T: Copy + std::ops::Add<Output = T>> Gear<T> {
        #[inline(never)]
        pub fn doubled(&self) -> T { // @doubled
            self.teeth + self.teeth
        }
    }

    pub trait Spin {
        fn spin(&self) -> u64;
    }

    impl Spin for Gear<u64> {
        #[inline(never)]
        fn spin(&self) -> u64 { // @spin
            self.teeth * 3
        }
    }

    #[inline(never)]
    pub fn crank(n: u64) -> u64 { // @crank
        n ^ 0x55
    }

    #[inline(never)]
    pub fn pick<T: PartialOrd + Copy>(a: T, b: T) -> T { // @pick
        if a > b { a } else { b }
    }
}

use engine::Spin;

fn main() {
    let g = engine::Gear { teeth: black_box(7u64) };
    let f = engine::Gear { teeth: black_box(1.5f64) };
    let mut acc = 0u64;
    for i in 0..4u64 {
        acc += black_box(&g).doubled();
        acc += black_box(&f).doubled() as u64;
        acc += engine::crank(black_box(i));
    }
    for i in 0..3u64 {
        acc += black_box(&g).spin();
        acc += engine::pick(black_box(i), 1u64);
        acc += engine::pick(black_box(i as f64), 0.5) as u64;
    }
    println!("acc {}", acc);
}
