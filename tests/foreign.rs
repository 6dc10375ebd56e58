//! Every std `Future` works: foreign futures that never trap are woken through
//! the task's real `Waker`, from this thread or from any other, and a wake is
//! never lost.

mod util;

use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use trapline::{sleep, spawn, TrapError};
use util::{run_clean, Rng};

/// A short, varied delay for a sender thread: often none at all (the wake
/// races the kernel going to sleep), otherwise up to half a millisecond.
fn jitter(rng: &mut Rng) -> Duration {
    match rng.below(3) {
        0 => Duration::ZERO,
        _ => Duration::from_micros(rng.below(500)),
    }
}

/// 200 oneshot channels in a row inside one run, each fired from a fresh OS
/// thread after a short (sometimes zero) delay, while the kernel has nothing
/// else to wait for: every remote wake reaches the task, every value arrives,
/// in order.
#[test]
fn oneshot_from_fresh_threads_200_times() {
    let got = run_clean(async {
        let mut rng = Rng::new(7);
        let mut got = Vec::new();
        for i in 0..200u32 {
            let (tx, rx) = oneshot::channel();
            let delay = jitter(&mut rng);
            let sender = thread::spawn(move || {
                thread::sleep(delay);
                tx.send(i).expect("the receiver waits");
            });
            got.push(rx.await.expect("the sender sent"));
            sender.join().expect("the sender thread");
        }
        got
    });
    assert_eq!(got, (0..200).collect::<Vec<_>>());
}

/// The same through one long-lived worker thread (a pool of one): 200
/// oneshots fired in turn from the same foreign thread.
#[test]
fn oneshot_from_a_worker_thread_200_times() {
    let (jobs, queue) = std_mpsc::channel::<(oneshot::Sender<u32>, u32, Duration)>();
    let worker = thread::spawn(move || {
        for (tx, value, delay) in queue {
            thread::sleep(delay);
            let _ = tx.send(value * 3);
        }
    });
    let got = run_clean(async move {
        let mut rng = Rng::new(11);
        let mut got = Vec::new();
        for i in 0..200u32 {
            let (tx, rx) = oneshot::channel();
            jobs.send((tx, i, jitter(&mut rng)))
                .expect("the worker runs");
            got.push(rx.await.expect("the worker sent"));
        }
        got
    });
    worker.join().expect("the worker thread");
    assert_eq!(got, (0..200).map(|i| i * 3).collect::<Vec<_>>());
}

/// Spawned tasks (not only the main one) waiting on oneshots fired from other
/// threads all wake: 20 tasks, each fed by its own thread.
#[test]
fn oneshots_in_spawned_tasks_from_threads() {
    let got = run_clean(async {
        let mut rng = Rng::new(3);
        let mut tasks = Vec::new();
        let mut threads = Vec::new();
        for i in 0..20u32 {
            let (tx, rx) = oneshot::channel();
            tasks.push(spawn(async move { rx.await.map(|v: u32| v + 1000) }).expect("spawn"));
            let delay = jitter(&mut rng);
            threads.push(thread::spawn(move || {
                thread::sleep(delay);
                tx.send(i).expect("the receiver waits");
            }));
        }
        let mut got = Vec::new();
        for task in tasks {
            got.push(task.join().await.expect("the task").expect("sent"));
        }
        for t in threads {
            t.join().expect("a sender thread");
        }
        got
    });
    assert_eq!(got, (1000..1020).collect::<Vec<_>>());
}

/// What a hand-written future and its feeding thread share.
#[derive(Default)]
struct Shared {
    value: Option<u64>,
    waker: Option<Waker>,
    polls: u32,
}

/// A hand-written future: stores the latest waker and waits for a value.
struct Handmade(Arc<Mutex<Shared>>);

impl Future for Handmade {
    type Output = (u64, u32);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(u64, u32)> {
        let mut s = self.0.lock().unwrap();
        s.polls += 1;
        match s.value {
            Some(v) => Poll::Ready((v, s.polls)),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A hand-written future that stores its waker is woken from another thread:
/// it completes with the value, after exactly two polls (the one that stored
/// the waker and the one the wake caused).
#[test]
fn handwritten_future_woken_from_another_thread() {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let s = shared.clone();
    let out = run_clean(async move {
        let feeder = {
            let s = s.clone();
            thread::spawn(move || {
                // Wait until the task has stored its waker, then set and wake.
                let waker = loop {
                    if let Some(w) = s.lock().unwrap().waker.clone() {
                        break w;
                    }
                    thread::sleep(Duration::from_micros(200));
                };
                s.lock().unwrap().value = Some(99);
                waker.wake();
            })
        };
        let out = Handmade(s).await;
        feeder.join().expect("the feeder thread");
        out
    });
    assert_eq!(out, (99, 2));
    assert!(shared.lock().unwrap().waker.is_some());
}

/// A bounded futures `mpsc` channel fed from another thread: the kernel-side
/// receiver is woken remotely, and the thread (blocked on a full channel) is
/// woken by the receiver, so both directions of wake work. All 300 items
/// arrive, in order, and the stream ends when the thread drops its sender.
#[test]
fn futures_mpsc_fed_from_a_thread() {
    let got = run_clean(async {
        let (mut tx, mut rx) = mpsc::channel::<u32>(2);
        let feeder = thread::spawn(move || {
            let mut rng = Rng::new(5);
            for i in 0..300u32 {
                if rng.below(4) == 0 {
                    thread::sleep(Duration::from_micros(rng.below(300)));
                }
                futures::executor::block_on(tx.send(i)).expect("the receiver is alive");
            }
        });
        let mut got = Vec::new();
        while let Some(v) = rx.next().await {
            got.push(v);
        }
        feeder.join().expect("the feeder thread");
        got
    });
    assert_eq!(got, (0..300).collect::<Vec<_>>());
}

/// An unbounded futures `mpsc` fed from several threads at once: every item
/// from every thread arrives.
#[test]
fn futures_unbounded_mpsc_from_several_threads() {
    let mut got = run_clean(async {
        let (tx, rx) = mpsc::unbounded::<(u32, u32)>();
        let feeders: Vec<_> = (0..4u32)
            .map(|t| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..100u32 {
                        tx.unbounded_send((t, i)).expect("the receiver is alive");
                        if i % 10 == 0 {
                            thread::sleep(Duration::from_micros(100));
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let got: Vec<_> = rx.collect().await;
        for f in feeders {
            f.join().expect("a feeder thread");
        }
        got
    });
    // Per thread, the items arrive in the order they were sent.
    for t in 0..4u32 {
        let mine: Vec<_> = got
            .iter()
            .filter(|(s, _)| *s == t)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(mine, (0..100).collect::<Vec<_>>(), "thread {t}");
    }
    got.sort_unstable();
    assert_eq!(got.len(), 400);
}

/// Captures clones of the waker it is polled with, across two polls.
struct Capture {
    wakers: Vec<Waker>,
}

impl Future for Capture {
    type Output = Vec<Waker>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<Waker>> {
        self.wakers.push(cx.waker().clone());
        self.wakers.push(cx.waker().clone());
        if self.wakers.len() < 4 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(std::mem::take(&mut self.wakers))
        }
    }
}

/// `Waker::will_wake` recognises a task's waker: two clones from one poll,
/// and clones from two polls of the same task, all will wake each other; a
/// waker of another task does not.
#[test]
fn task_waker_will_wake_its_clones() {
    let (mine, other) = run_clean(async {
        let mine = Capture { wakers: Vec::new() }.await;
        let other = spawn(async { Capture { wakers: Vec::new() }.await })
            .expect("spawn")
            .join()
            .await
            .expect("the other task");
        (mine, other)
    });
    assert_eq!(mine.len(), 4);
    for a in &mine {
        for b in &mine {
            assert!(a.will_wake(b), "{a:?} vs {b:?}");
        }
    }
    assert!(!mine[0].will_wake(&other[0]));
    assert!(other[0].will_wake(&other[3]));
}

/// A foreign future and a trap leaf side by side in `join!`: the oneshot is
/// fired from a thread while the sleep is parked; both end, each with its own
/// value, and the sleep's park is not disturbed by the remote wake.
#[test]
fn join_of_oneshot_and_sleep() {
    let out = run_clean(async {
        let (tx, rx) = oneshot::channel();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(2));
            tx.send("remote").expect("the receiver waits");
        });
        let out = futures::join!(rx, sleep(Duration::from_millis(20)));
        sender.join().expect("the sender thread");
        out
    });
    assert_eq!(out, (Ok("remote"), Ok::<(), TrapError>(())));
}
