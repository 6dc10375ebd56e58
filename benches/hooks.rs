//! What watching costs: the kernel's task switch and spawn with no hooks,
//! with a hook that does nothing, and with the monitor's board, as ratios to
//! the unwatched kernel measured in the same process.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench hooks
//! ```
//!
//! Each case runs in 7 batches on fresh kernels, the cases interleaved so a
//! noisy machine spreads its noise over all of them; the table shows the
//! median ns/op and its ratio to "no hooks".

use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use trapline::monitor::Monitor;
use trapline::{spawn, yield_now, Hooks, Kernel};

const ROUNDS: usize = 7;

/// A hook that is called and does nothing: the price of the calls alone.
struct Nothing;
impl Hooks for Nothing {}

#[derive(Clone, Copy)]
enum Watch {
    None,
    NoopHook,
    Monitor,
}

impl Watch {
    fn name(self) -> &'static str {
        match self {
            Watch::None => "no hooks",
            Watch::NoopHook => "a no-op hook",
            Watch::Monitor => "the monitor's board",
        }
    }

    fn kernel(self) -> Kernel {
        match self {
            Watch::None => Kernel::new().unwrap(),
            Watch::NoopHook => Kernel::builder().hooks(Rc::new(Nothing)).build().unwrap(),
            // Its hooks only: no listener is started, so nothing else runs.
            Watch::Monitor => Monitor::new("127.0.0.1:0".parse().unwrap())
                .unwrap()
                .build(Kernel::builder())
                .unwrap(),
        }
    }
}

/// ns/op of `ops` task switches (two tasks yielding to each other).
fn switches(watch: Watch, ops: u64) -> f64 {
    let mut kernel = watch.kernel();
    let start = Instant::now();
    kernel
        .run(async move {
            let other = spawn(async move {
                for _ in 0..ops / 2 {
                    yield_now().await.unwrap();
                }
            })
            .unwrap();
            for _ in 0..ops / 2 {
                yield_now().await.unwrap();
            }
            other.join().await.unwrap();
        })
        .unwrap();
    start.elapsed().as_nanos() as f64 / ops as f64
}

/// ns/op of `ops` spawn-and-join pairs.
fn spawns(watch: Watch, ops: u64) -> f64 {
    let mut kernel = watch.kernel();
    let start = Instant::now();
    kernel
        .run(async move {
            for i in 0..ops {
                let t = spawn(async move { black_box(i) }).unwrap();
                black_box(t.join().await.unwrap());
            }
        })
        .unwrap();
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; any other way, the batches stay small.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = if quick { 1_000 } else { 100_000 };
    let watches = [Watch::None, Watch::NoopHook, Watch::Monitor];
    type Case = (&'static str, fn(Watch, u64) -> f64);
    let cases: [Case; 2] = [("yield (task switch)", switches), ("spawn + join", spawns)];
    println!(
        "{:<22} {:<22} {:>10} {:>8}",
        "operation", "watched by", "ns/op", "ratio"
    );
    for (op, case) in cases {
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); watches.len()];
        for _ in 0..ROUNDS {
            for (w, watch) in watches.iter().enumerate() {
                runs[w].push(case(*watch, n));
            }
        }
        let medians: Vec<f64> = runs.into_iter().map(median).collect();
        for (watch, ns) in watches.iter().zip(&medians) {
            let ratio = ns / medians[0];
            println!("{op:<22} {:<22} {ns:>10.1} {ratio:>8.2}", watch.name());
        }
    }
}
