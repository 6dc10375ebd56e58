//! Producer/consumer: an OS thread feeds kernel tasks through bounded queues.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example producer_consumer -- --items 100000 --consumers 4
//! ```
//!
//! An OS thread produces the numbers `0..items` into a bounded
//! `UniversalQueue`, blocking whenever it is full; a task forwards them into
//! a bounded `sync::Queue`, waiting whenever that is full; a `TaskGroup` of
//! consumer tasks takes them out, adds them up and marks each one done. The
//! main task waits on `Queue::join` for every item to be processed, then
//! cancels the consumers (they wait forever on an empty queue otherwise) and
//! checks the total against `items * (items - 1) / 2`.
//!
//! `RUST_LOG=trapline=trace` shows the waits: `SchedWait` for the task
//! queue, `FutureWait` for the thread's queue, each with its source line.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use trapline::sync::Queue;
use trapline::{TaskGroup, TrapError, UniversalQueue};

/// The most items whose sum (below 2^63) a `u64` holds.
const MAX_ITEMS: u64 = 1 << 32;

const USAGE: &str = "usage: producer_consumer [--items N] [--consumers K]   (default 100000, 4)";

fn parse_args() -> Result<Option<(u64, usize)>, String> {
    let (mut items, mut consumers) = (100_000u64, 4usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--items" => {
                let v = value("--items")?;
                items = v.parse().map_err(|e| format!("--items {v:?}: {e}"))?;
                // The sum 0 + 1 + … + (items - 1) must fit in a u64.
                if items > MAX_ITEMS {
                    return Err(format!("--items {items}: want at most {MAX_ITEMS}"));
                }
            }
            "--consumers" => {
                let v = value("--consumers")?;
                consumers = v.parse().map_err(|e| format!("--consumers {v:?}: {e}"))?;
                if !(1..=1024).contains(&consumers) {
                    return Err(format!("--consumers {consumers}: want 1 to 1024"));
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Some((items, consumers)))
}

async fn pipeline(items: u64, consumers: usize) -> Result<(u64, Vec<u64>), TrapError> {
    // Thread -> kernel: the thread blocks when 64 items wait.
    let from_thread = UniversalQueue::bounded(64);
    let feed = from_thread.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..items {
            feed.put_blocking(Some(i))?;
        }
        feed.put_blocking(None) // no more
    });

    // Task -> tasks: the forwarder waits when 16 items wait.
    let work = Rc::new(Queue::bounded(16));
    let workers = TaskGroup::<(), TrapError>::new();
    let counts: Vec<Rc<Cell<u64>>> = (0..consumers).map(|_| Rc::new(Cell::new(0))).collect();
    let total = Rc::new(Cell::new(0u64));
    for count in &counts {
        let (work, count, total) = (work.clone(), count.clone(), total.clone());
        workers.spawn(async move {
            loop {
                let n: u64 = work.get().await?; // cancelled here at the end
                total.set(total.get() + n);
                count.set(count.get() + 1);
                work.task_done()
                    .map_err(|_| TrapError::Unsupported("task_done"))?;
            }
        })?;
    }
    while let Some(n) = from_thread.get().await? {
        work.put(n).await?;
    }
    work.join().await?; // every item processed
    workers.cancel_remaining().await?;
    producer.join().expect("the producer thread")?;
    Ok((total.get(), counts.iter().map(|c| c.get()).collect()))
}

fn main() {
    env_logger::init();
    let (items, consumers) = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("producer_consumer: {msg}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let (total, counts) = match trapline::run(pipeline(items, consumers)) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            eprintln!("producer_consumer: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("producer_consumer: {e}");
            std::process::exit(1);
        }
    };
    let elapsed = started.elapsed();
    let expected = items * items.saturating_sub(1) / 2;
    println!("{items} items, {consumers} consumers: total {total} (expected {expected})");
    println!("items per consumer: {counts:?}");
    println!(
        "{elapsed:.2?}, {:.0} items/s",
        items as f64 / elapsed.as_secs_f64()
    );
    if total != expected || counts.iter().sum::<u64>() != items {
        eprintln!("producer_consumer: wrong total");
        std::process::exit(1);
    }
}
