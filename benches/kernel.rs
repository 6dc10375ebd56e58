//! The kernel's own costs beside tokio current_thread's, with criterion.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench kernel
//! ```
//!
//! Each group measures one operation on trapline and on a tokio
//! current_thread runtime, timed inside the runtime (a kernel or runtime is
//! made once per sample, outside the timing):
//!
//! - `spawn_complete`: spawn a task that returns at once, and join it;
//! - `yield`: two tasks yielding to each other; one iteration is one yield
//!   of each (two task switches);
//! - `ping_pong`: two tasks passing a number back and forth; one iteration is
//!   a round trip. trapline's mailbox is built on the `SchedWait` and
//!   `SchedWake` traps (below); tokio's is its `mpsc` channel;
//! - `timer_insert_cancel`: a timeout armed around a future that yields once,
//!   then disarmed (tokio registers its timer entry only when the inner
//!   future is pending, hence the yield; both pay it);
//! - `sleep_10k`: 10,000 tasks sleep 1 ms and are joined; one iteration is
//!   the whole batch.
//!
//! Run any other way than `cargo bench` (as `cargo test` does), criterion
//! runs each benchmark once, to check it works.

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use trapline::traps::{sched_wake, Leaf, QueueId, Trap, TrapError};

/// Runs `body(iters)` on a fresh trapline kernel; it returns the time it took.
fn on_trapline<F, Fut>(iters: u64, body: F) -> Duration
where
    F: FnOnce(u64) -> Fut,
    Fut: Future<Output = Duration>,
{
    trapline::run(body(iters)).expect("a kernel")
}

/// Runs `body(iters)` on a fresh tokio current_thread runtime.
fn on_tokio<F, Fut>(iters: u64, body: F) -> Duration
where
    F: FnOnce(u64) -> Fut,
    Fut: Future<Output = Duration>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(body(iters))
}

/// A one-value mailbox for two tasks on one kernel, written with traps only.
struct Mailbox {
    value: Cell<Option<u64>>,
    queue: QueueId,
}

impl Mailbox {
    fn new() -> Mailbox {
        Mailbox {
            value: Cell::new(None),
            queue: QueueId::new(),
        }
    }

    fn send(&self, v: u64) {
        self.value.set(Some(v));
        sched_wake(self.queue, 1).expect("inside a kernel");
    }

    fn recv(&self) -> Recv<'_> {
        Recv {
            mailbox: self,
            leaf: Leaf::new(),
        }
    }
}

/// Waits in the mailbox's queue until a value is there.
struct Recv<'a> {
    mailbox: &'a Mailbox,
    leaf: Leaf,
}

impl Future for Recv<'_> {
    type Output = Result<u64, TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(v) = this.mailbox.value.take() {
            this.leaf.done();
            return Poll::Ready(Ok(v));
        }
        match this.leaf.trap(
            cx,
            Trap::SchedWait {
                queue: this.mailbox.queue,
            },
        ) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

fn spawn_complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_complete");
    group.bench_function("trapline", |b| {
        b.iter_custom(|iters| {
            on_trapline(iters, |n| async move {
                let start = Instant::now();
                for i in 0..n {
                    let task = trapline::spawn(async move { black_box(i) }).unwrap();
                    black_box(task.join().await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(iters, |n| async move {
                let start = Instant::now();
                for i in 0..n {
                    black_box(tokio::spawn(async move { black_box(i) }).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn yield_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield");
    group.bench_function("trapline", |b| {
        b.iter_custom(|iters| {
            on_trapline(iters, |n| async move {
                let start = Instant::now();
                let other = trapline::spawn(async move {
                    for _ in 0..n {
                        trapline::yield_now().await.unwrap();
                    }
                })
                .unwrap();
                for _ in 0..n {
                    trapline::yield_now().await.unwrap();
                }
                other.join().await.unwrap();
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(iters, |n| async move {
                let start = Instant::now();
                let other = tokio::spawn(async move {
                    for _ in 0..n {
                        tokio::task::yield_now().await;
                    }
                });
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                other.await.unwrap();
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping_pong");
    group.bench_function("trapline", |b| {
        b.iter_custom(|iters| {
            on_trapline(iters, |n| async move {
                let (ping, pong) = (Rc::new(Mailbox::new()), Rc::new(Mailbox::new()));
                let start = Instant::now();
                let echo = {
                    let (ping, pong) = (ping.clone(), pong.clone());
                    trapline::spawn(async move {
                        for _ in 0..n {
                            let v = ping.recv().await.unwrap();
                            pong.send(v + 1);
                        }
                    })
                    .unwrap()
                };
                for i in 0..n {
                    ping.send(i);
                    assert_eq!(pong.recv().await.unwrap(), i + 1);
                }
                echo.join().await.unwrap();
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(iters, |n| async move {
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
                let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
                let start = Instant::now();
                let echo = tokio::spawn(async move {
                    for _ in 0..n {
                        let v = ping_rx.recv().await.unwrap();
                        pong_tx.send(v + 1).unwrap();
                    }
                });
                for i in 0..n {
                    ping_tx.send(i).unwrap();
                    assert_eq!(pong_rx.recv().await.unwrap(), i + 1);
                }
                echo.await.unwrap();
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn timer_insert_cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_insert_cancel");
    group.bench_function("trapline", |b| {
        b.iter_custom(|iters| {
            on_trapline(iters, |n| async move {
                let start = Instant::now();
                for _ in 0..n {
                    let limited =
                        trapline::timeout_after(Duration::from_secs(60), trapline::yield_now());
                    limited.await.unwrap().unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(iters, |n| async move {
                let start = Instant::now();
                for _ in 0..n {
                    let limited =
                        tokio::time::timeout(Duration::from_secs(60), tokio::task::yield_now());
                    limited.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

const SLEEPERS: usize = 10_000;

fn sleep_10k(c: &mut Criterion) {
    let mut group = c.benchmark_group("sleep_10k");
    group.sample_size(10);
    group.bench_function("trapline", |b| {
        b.iter_custom(|iters| {
            on_trapline(iters, |n| async move {
                let start = Instant::now();
                for _ in 0..n {
                    let tasks: Vec<_> = (0..SLEEPERS)
                        .map(|_| {
                            trapline::spawn(trapline::sleep(Duration::from_millis(1))).unwrap()
                        })
                        .collect();
                    for t in &tasks {
                        t.join().await.unwrap().unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(iters, |n| async move {
                let start = Instant::now();
                for _ in 0..n {
                    let tasks: Vec<_> = (0..SLEEPERS)
                        .map(|_| tokio::spawn(tokio::time::sleep(Duration::from_millis(1))))
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = spawn_complete, yield_switch, ping_pong, timer_insert_cancel, sleep_10k
}
criterion_main!(benches);
