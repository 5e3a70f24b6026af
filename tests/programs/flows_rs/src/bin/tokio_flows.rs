//! tokio_flows N K [WAVES [BLOCKING]]: a multi-thread runtime (2 workers) running N
//! spawned tasks that each yield K times; prints `tasks T polls P` where P is
//! the number of polls the tasks counted themselves (each poll of a task that
//! yields K times and then returns: K + 1, unless a wake-up races). With
//! WAVES (t_tried, built --release), WAVES waves of N tasks, each awaited
//! before the next is spawned, so that new tasks are allocated where the
//! last wave's were freed; T = WAVES * N. Then BLOCKING spawn_blocking
//! calls of blocking(), each awaited; prints `blocking B`.
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

static POLLS: AtomicUsize = AtomicUsize::new(0);
static BLOCKING: AtomicUsize = AtomicUsize::new(0);

/// The work of a spawn_blocking task.
#[inline(never)]
fn blocking(i: usize) -> usize {
    BLOCKING.fetch_add(1, Ordering::Relaxed);
    i
}

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
    let waves: usize = std::env::args().nth(3).map(|s| s.parse().unwrap()).unwrap_or(1);
    let nblock: usize = std::env::args().nth(4).map(|s| s.parse().unwrap()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let total = rt.block_on(async move {
        let mut t = 0;
        for w in 0..waves {
            let hs: Vec<_> =
                (0..n).map(|i| tokio::spawn(Yielder { left: k, id: w * n + i })).collect();
            for h in hs {
                t += h.await.unwrap();
            }
        }
        for i in 0..nblock {
            assert_eq!(tokio::task::spawn_blocking(move || blocking(i)).await.unwrap(), i);
        }
        t
    });
    assert_eq!(total, waves * n * (waves * n - 1) / 2);
    println!("tasks {} polls {}", waves * n, POLLS.load(Ordering::Relaxed));
    if nblock > 0 {
        println!("blocking {}", BLOCKING.load(Ordering::Relaxed));
    }
}
