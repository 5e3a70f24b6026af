// dump_names.rs - Rust functions (generic, in modules, methods) for the
// demangling test of t_dump.py; built with -Zinstrument-xray=always.
mod shapes {
    pub struct Circle {
        pub r: f64,
    }

    impl Circle {
        #[inline(never)]
        pub fn area(&self) -> f64 {
            3.14159 * self.r * self.r
        }
    }

    #[inline(never)]
    pub fn largest<T: PartialOrd + Copy>(xs: &[T]) -> T {
        let mut m = xs[0];
        for &x in xs {
            if x > m {
                m = x;
            }
        }
        m
    }
}

#[inline(never)]
fn compute(n: u64) -> u64 {
    (0..n).map(|i| i * i).sum()
}

fn main() {
    let n = std::env::args().count() as u64;
    let c = shapes::Circle { r: n as f64 };
    let v: Vec<u64> = (0..n + 3).collect();
    println!("{} {} {}", c.area(), shapes::largest(&v), compute(n));
}
