// readme_prog_rs.rs - the `prog_rs.rs` of README.md's "Use" section for
// tests/t_docs.py, built with README's rustc line as written: main and two
// threads, each computing a Fibonacci number recursively.
#[inline(never)]
fn fib(n: u32) -> u64 { if n < 2 { n as u64 } else { fib(n - 1) + fib(n - 2) } }
fn main() {
    let h: Vec<_> = (0..2).map(|i| std::thread::spawn(move || fib(10 + i))).collect();
    let s: u64 = h.into_iter().map(|t| t.join().unwrap()).sum();
    println!("{}", s);
}
