//! tokio_flows N K: a multi-thread runtime (2 workers) running N spawned
//! tasks that each yield K times; prints `tasks N polls P` where P is the
//! number of polls the tasks counted themselves (each poll of a task that
//! yields K times and then returns: K + 1, unless a wake-up races).
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
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(8);
    let k: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let total = rt.block_on(async move {
        let hs: Vec<_> = (0..n).map(|id| tokio::spawn(Yielder { left: k, id })).collect();
        let mut t = 0;
        for h in hs {
            t += h.await.unwrap();
        }
        t
    });
    assert_eq!(total, n * (n - 1) / 2);
    println!("tasks {} polls {}", n, POLLS.load(Ordering::Relaxed));
}
