//! tried_tokio WAVES N K: a multi-thread runtime (2 workers) spawning WAVES
//! waves of N tasks, each task yielding K times; every wave is awaited before
//! the next is spawned, so the next wave's tasks are allocated where the last
//! wave's were freed (the allocator reuses the blocks). Prints `tasks T polls
//! P`, P the polls the tasks counted themselves.
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

static POLLS: AtomicUsize = AtomicUsize::new(0);

/// A future that counts its own polls and yields `left` times.
struct Yielder {
    left: usize,
    id: usize,
}

impl Future for Yielder {
    type Output = usize;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        POLLS.fetch_add(1, Ordering::Relaxed);
        if self.left == 0 {
            return Poll::Ready(self.id);
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).map(|s| s.parse().unwrap()).unwrap_or(d);
    let (waves, n, k) = (arg(1, 4), arg(2, 8), arg(3, 2));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let total = rt.block_on(async move {
        let mut t = 0;
        for w in 0..waves {
            let hs: Vec<_> = (0..n).map(|i| tokio::spawn(Yielder { left: k, id: w * n + i })).collect();
            for h in hs {
                t += h.await.unwrap();
            }
        }
        t
    });
    assert_eq!(total, waves * n * (waves * n - 1) / 2);
    println!("tasks {} polls {}", waves * n, POLLS.load(Ordering::Relaxed));
}
