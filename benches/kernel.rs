//! Costs of the kernel's own operations, in nanoseconds per operation.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench kernel
//! ```
//!
//! Each operation runs in batches on a fresh kernel; the table shows the
//! median and the best of 7 batches. These are trapline's figures alone:
//! they are meant to be compared run against run, on one machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use trapline::{sleep, spawn, timeout_after, yield_now};

const ROUNDS: usize = 7;

/// Runs `batch` (which does `ops` operations) `ROUNDS` times on fresh
/// kernels; returns (median, best) nanoseconds per operation.
fn measure<F, Fut>(ops: u64, batch: F) -> (f64, f64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut per_op: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            trapline::run(batch()).expect("a kernel");
            start.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    (per_op[ROUNDS / 2], per_op[0])
}

fn report(name: &str, (median, best): (f64, f64)) {
    println!("{name:<36} {median:>10.1} {best:>10.1}");
}

fn main() {
    // `cargo bench` passes --bench; run any other way (`cargo test
    // --benches`), the batches are kept small so the run is quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = if quick { 1_000 } else { 100_000 };
    println!(
        "{:<36} {:>10} {:>10}",
        "operation (ns/op)", "median", "best"
    );

    report(
        "spawn + join",
        measure(n, || async move {
            for i in 0..n {
                let t = spawn(async move { black_box(i) }).unwrap();
                black_box(t.join().await.unwrap());
            }
        }),
    );
    report(
        "spawn 1000, then join all",
        measure(n, || async move {
            for _ in 0..n / 1000 {
                let tasks: Vec<_> = (0..1000u64)
                    .map(|i| spawn(async move { black_box(i) }).unwrap())
                    .collect();
                for t in &tasks {
                    black_box(t.join().await.unwrap());
                }
            }
        }),
    );
    report(
        "yield (task switch, 2 tasks)",
        measure(2 * n, || async move {
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
        }),
    );
    report(
        "timeout_after armed and unset",
        measure(n, || async move {
            for i in 0..n {
                let v = timeout_after(Duration::from_secs(60), async move { i }).await;
                black_box(v.unwrap());
            }
        }),
    );
    report(
        "10k tasks sleep 1 ms and wake, per task",
        measure(10_000, || async move {
            let tasks: Vec<_> = (0..10_000)
                .map(|_| spawn(sleep(Duration::from_millis(1))).unwrap())
                .collect();
            for t in &tasks {
                t.join().await.unwrap().unwrap();
            }
        }),
    );
}
