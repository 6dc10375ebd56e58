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
//! After the run, the table of trapline's and tokio's times and their ratios
//! is written from criterion's own estimates (its `estimates.json` files) to
//! `benches/results/kernel.md`, with the raw figures in `kernel.json` and
//! the machine it ran on; paste the table into the README.
//!
//! Run any other way than `cargo bench` (as `cargo test` does), each
//! benchmark is measured briefly (ten samples of a few iterations) and the
//! table goes under `target/bench-results/`: the figures mean nothing, but
//! the path from measurement to table runs.

use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};

#[path = "common/machine.rs"]
mod machine;
#[path = "common/mailbox.rs"]
mod mailbox;

use mailbox::Mailbox;

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

fn spawn_complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_complete");
    brief(&mut group);
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
    brief(&mut group);
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
    brief(&mut group);
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
                            pong.send(v + 1).unwrap();
                        }
                    })
                    .unwrap()
                };
                for i in 0..n {
                    ping.send(i).unwrap();
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
    brief(&mut group);
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
    brief(&mut group);
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

/// Set in the quick mode (see `main`): every group samples flat, so a
/// sample is as few iterations as the measurement time allows.
static QUICK: AtomicBool = AtomicBool::new(false);

fn brief(group: &mut BenchmarkGroup<'_, WallTime>) {
    if QUICK.load(Ordering::Relaxed) {
        group.sampling_mode(SamplingMode::Flat);
    }
}

/// The operations of the table, in its order: criterion's group name and
/// the row's label.
const OPERATIONS: [(&str, &str); 5] = [
    ("spawn_complete", "spawn + complete (spawn, join)"),
    ("yield", "yield (one yield of each of 2 tasks)"),
    ("ping_pong", "ping-pong round trip (2 tasks)"),
    (
        "timer_insert_cancel",
        "timer insert + cancel (a timeout around one yield)",
    ),
    ("sleep_10k", "10k tasks sleep 1 ms, joined (per batch)"),
];

/// The two sides of every group, as criterion names them.
const RUNTIMES: [&str; 2] = ["trapline", "tokio"];

/// Criterion's estimate of one benchmark's time per iteration, in
/// nanoseconds: the slope of its linear fit when it made one, else the mean,
/// which is the middle figure it prints as `time: [low mid high]`.
fn estimate(dir: &Path, group: &str, runtime: &str) -> Option<f64> {
    let path = dir.join(group).join(runtime).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let typical = match &json["slope"] {
        serde_json::Value::Null => &json["mean"],
        slope => slope,
    };
    typical["point_estimate"].as_f64()
}

/// `ns` with a unit that keeps three or so digits.
fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The table and the JSON of this run's estimates. A benchmark this run did
/// not measure (filtered out) has no estimate and shows as "not run".
fn results(dir: &Path, machine: &str, full: bool) -> (String, serde_json::Value) {
    let mut md = format!(
        "Kernel micro benches ({}), {machine}. Criterion's estimate per iteration (the middle of its interval); ratios from the same run:\n\n",
        if full { "full" } else { "quick" }
    );
    md.push_str("| operation | trapline | tokio current_thread | trapline / tokio |\n");
    md.push_str("| --- | ---: | ---: | ---: |\n");
    let mut rows = Vec::new();
    for (group, label) in OPERATIONS {
        let [ours, theirs] = RUNTIMES.map(|r| estimate(dir, group, r));
        let show = |ns: Option<f64>| ns.map_or_else(|| "not run".to_string(), time);
        let ratio = ours.zip(theirs).map(|(a, b)| a / b);
        md.push_str(&format!(
            "| {label} | {} | {} | {} |\n",
            show(ours),
            show(theirs),
            ratio.map_or_else(|| "-".to_string(), |r| format!("{r:.2}"))
        ));
        rows.push(serde_json::json!({
            "operation": group,
            "trapline_ns": ours,
            "tokio_current_thread_ns": theirs,
            "ratio": ratio,
        }));
    }
    let json = serde_json::json!({
        "machine": machine,
        "mode": if full { "full" } else { "quick" },
        "unit": "nanoseconds per iteration (criterion's slope, else mean)",
        "operations": rows,
    });
    (md, json)
}

/// Runs every group, then writes the table from criterion's own estimates.
///
/// Under `cargo bench` (`--bench` among the arguments) criterion takes its
/// settings and filters from the command line and writes under
/// `target/criterion`; the table goes to `benches/results/kernel.{md,json}`.
/// Any other way (as `cargo test` runs it), each benchmark is measured
/// briefly, ten samples of a few iterations, so that the same path from the
/// measurement to the table runs; output under `target/bench-results/`.
fn main() -> std::io::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    let (dir, out) = if full {
        (target.join("criterion"), PathBuf::from("benches/results"))
    } else {
        (
            target.join("bench-results/criterion"),
            target.join("bench-results"),
        )
    };
    // Estimates left by an earlier run must not pass for this one's.
    for (group, _) in OPERATIONS {
        for runtime in RUNTIMES {
            let _ = std::fs::remove_file(dir.join(group).join(runtime).join("new/estimates.json"));
        }
    }
    QUICK.store(!full, Ordering::Relaxed);
    let machine = machine::machine();
    let mut c = if full {
        Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20)
            .output_directory(&dir)
            .configure_from_args()
    } else {
        Criterion::default()
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_millis(1))
            .sample_size(10)
            .nresamples(1000)
            .output_directory(&dir)
    };
    spawn_complete(&mut c);
    yield_switch(&mut c);
    ping_pong(&mut c);
    timer_insert_cancel(&mut c);
    sleep_10k(&mut c);
    c.final_summary();

    let (md, json) = results(&dir, &machine, full);
    println!("{md}");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("kernel.md"), md)?;
    std::fs::write(
        out.join("kernel.json"),
        serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?,
    )?;
    eprintln!("wrote kernel.md and kernel.json in {}", out.display());
    Ok(())
}
