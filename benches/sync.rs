//! What the trap-built primitives cost, as ratios to a reference measured in
//! the same process: the same hand-off done with `futures::channel::mpsc`
//! (a waker-based channel, no traps), and the same blocking work done with
//! a fresh `std::thread` per job.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench sync
//! ```
//!
//! Each figure is the median of 7 batches on fresh kernels, in nanoseconds
//! per item handed over; the ratio column divides it by its reference. Run
//! any other way (`cargo test --benches`), the batches are small and quick.

use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use trapline::sync::{Lock, Queue};
use trapline::{run_in_thread, spawn, yield_now, UniversalQueue};

const ROUNDS: usize = 7;

/// Median nanoseconds per item of `batch` (which hands over `items` items).
fn measure<F, Fut>(items: u64, batch: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut per_item: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            trapline::run(batch()).expect("a kernel");
            start.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    per_item.sort_by(f64::total_cmp);
    per_item[ROUNDS / 2]
}

fn report(name: &str, ns: f64, reference: f64) {
    println!("{name:<44} {ns:>10.1} {:>8.2}", ns / reference);
}

/// Tasks -> task through a bounded trapline `Queue`.
async fn queue(n: u64, capacity: usize) {
    let q = Rc::new(Queue::bounded(capacity));
    let p = q.clone();
    let producer = spawn(async move {
        for i in 0..n {
            p.put(i).await.unwrap();
        }
    })
    .unwrap();
    for _ in 0..n {
        black_box(q.get().await.unwrap());
    }
    producer.join().await.unwrap();
}

/// The same through `futures::channel::mpsc` (the reference).
async fn mpsc(n: u64, capacity: usize) {
    let (mut tx, mut rx) = futures::channel::mpsc::channel(capacity);
    let producer = spawn(async move {
        for i in 0..n {
            tx.send(i).await.unwrap();
        }
    })
    .unwrap();
    for _ in 0..n {
        black_box(rx.next().await.unwrap());
    }
    producer.join().await.unwrap();
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = if quick { 1_000 } else { 200_000 };
    let jobs: u64 = if quick { 20 } else { 2_000 };
    println!(
        "{:<44} {:>10} {:>8}",
        "hand-off (ns/item)", "median", "ratio"
    );

    for capacity in [1, 64] {
        let reference = measure(n, || mpsc(n, capacity));
        report(
            &format!("futures mpsc, capacity {capacity} (reference)"),
            reference,
            reference,
        );
        report(
            &format!("sync::Queue, capacity {capacity}"),
            measure(n, || queue(n, capacity)),
            reference,
        );
    }

    // A contended lock: two tasks take turns, each yielding while it holds it.
    let reference = measure(2 * n, || async move {
        let other = spawn(async move {
            for _ in 0..n {
                yield_now().await.unwrap();
            }
        })
        .unwrap();
        for _ in 0..n {
            yield_now().await.unwrap();
        }
        other.join().await.unwrap();
    });
    report("2 tasks yield in turn (reference)", reference, reference);
    let lock = measure(2 * n, || async move {
        let lock = Rc::new(Lock::new());
        let l = lock.clone();
        let other = spawn(async move {
            for _ in 0..n {
                let _held = l.acquire().await.unwrap();
                yield_now().await.unwrap();
            }
        })
        .unwrap();
        for _ in 0..n {
            let _held = lock.acquire().await.unwrap();
            yield_now().await.unwrap();
        }
        other.join().await.unwrap();
    });
    report("2 tasks share a Lock, yielding inside", lock, reference);

    // OS thread -> task: UniversalQueue against std mpsc between two threads.
    let reference = {
        let start = Instant::now();
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        let producer = std::thread::spawn(move || (0..n).for_each(|i| tx.send(i).unwrap()));
        for _ in 0..n {
            black_box(rx.recv().unwrap());
        }
        producer.join().unwrap();
        start.elapsed().as_nanos() as f64 / n as f64
    };
    report(
        "std mpsc, thread -> thread (reference)",
        reference,
        reference,
    );
    let universal = measure(n, || async move {
        let q = UniversalQueue::bounded(64);
        let feed = q.clone();
        let producer =
            std::thread::spawn(move || (0..n).for_each(|i| feed.put_blocking(i).unwrap()));
        for _ in 0..n {
            black_box(q.get().await.unwrap());
        }
        producer.join().unwrap();
    });
    report("UniversalQueue, thread -> task", universal, reference);

    // Blocking jobs: the pool against a thread per job.
    let reference = {
        let start = Instant::now();
        for i in 0..jobs {
            black_box(std::thread::spawn(move || i).join().unwrap());
        }
        start.elapsed().as_nanos() as f64 / jobs as f64
    };
    report(
        "std::thread::spawn + join per job (reference)",
        reference,
        reference,
    );
    let pooled = measure(jobs, || async move {
        for i in 0..jobs {
            black_box(run_in_thread(move || i).await.unwrap());
        }
    });
    report("run_in_thread round trip", pooled, reference);
}
