// syms_rs.rs - the Rust program of t_syms.py: functions in modules (each
// module its own codegen unit), a trait method, an inherent method, a
// generic function with two instances and a closure. Built with legacy and
// v0 mangling.
use std::hint::black_box;

mod geometry {
    pub trait Area {
        fn area(&self) -> u64;
    }

    pub struct Square {
        pub side: u64,
    }

    impl Area for Square {
        #[inline(never)]
        fn area(&self) -> u64 { // @<syms_rs::geometry::Square as syms_rs::geometry::Area>::area
            self.side * self.side
        }
    }

    impl Square {
        #[inline(never)]
        pub fn grow(&mut self, by: u64) { // @syms_rs::geometry::Square::grow | <syms_rs::geometry::Square>::grow
            self.side += by;
        }
    }
}

mod util {
    #[inline(never)]
    pub fn pick<T: Copy + PartialOrd>(a: T, b: T) -> T { // @syms_rs::util::pick | syms_rs::util::pick::<u32> | syms_rs::util::pick::<u64>
        if a > b { a } else { b }
    }

    pub mod deep {
        #[inline(never)]
        pub fn apply(f: &dyn Fn(u64) -> u64, x: u64) -> u64 { // @syms_rs::util::deep::apply
            f(x) + 1
        }
    }
}

#[inline(never)]
fn top_level(x: u64) -> u64 { // @syms_rs::top_level
    x.wrapping_mul(31)
}

#[inline(never)]
fn run(n: u64) { // @syms_rs::run
    let t = top_level(n);
    use geometry::Area;
    let mut s = geometry::Square { side: black_box(3) };
    s.grow(black_box(1));
    let k = black_box(5u64);
    let add = move |y: u64| y + k; // @syms_rs::run::{{closure}} | syms_rs::run::{closure#0}
    let f: &dyn Fn(u64) -> u64 = black_box(&add);
    let r = s.area()
        + util::pick(black_box(2u64), 7)
        + util::pick(black_box(1u32), 4) as u64
        + util::deep::apply(f, 2)
        + t;
    println!("{}", r);
}

fn main() { // @syms_rs::main
    run(std::env::args().count() as u64);
}
