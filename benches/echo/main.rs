//! Echo latency and throughput: trapline beside tokio and a raw mio loop.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench echo
//! ```
//!
//! Every server runs in this one process, each on a thread pinned to core 0;
//! the load generator runs on core 1. Rounds alternate between the servers
//! (trapline, tokio current_thread, tokio multi_thread with 2 workers, raw
//! mio) so that a noisy neighbour on a shared machine hurts them all alike,
//! and the figures that matter are the ratios. For 64 B and 1 KiB messages
//! and 1, 64 and 1,000 connections, each server is loaded in a closed loop
//! (throughput), then in an open loop at 10%, 50% and 90% of the throughput
//! tokio current_thread reached in that round (latency from the intended send
//! time, see `load.rs`).
//!
//! Output: a markdown table of figures and ratios on stdout and in
//! `benches/results/echo.md` (its heading and ratio tables alone, which the
//! README shows, in `echo_summary.md`), the raw figures in
//! `benches/results/echo.json`,
//! and latency against offered load in `benches/results/echo.svg`.
//!
//! Run any other way than `cargo bench` (as `cargo test` does), it makes a
//! quick pass over a small matrix, writes its output under `target/`, and
//! checks only that every byte came back (and that the syscall counters'
//! summaries are read right, from captured ones).
//!
//! Syscalls per echoed message: `cargo bench --bench echo -- --syscalls`
//! runs each server under `perf stat` and under `strace -c -f` for exactly
//! 100,000 messages, with 1 and with 64 connections (`--messages N --size S
//! --connections C` to change that), and writes `benches/results/syscalls.md`. By hand, `--serve NAME --port P` runs one
//! server in the foreground, and `--load HOST:PORT --messages N --size S
//! --connections C` sends exactly `N` messages in a closed loop.

mod load;
#[path = "../common/machine.rs"]
mod machine;
mod pin;
#[path = "../common/reaped.rs"]
mod reaped;
mod report;
mod servers;
mod syscalls;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use load::{Mode, Plan};
use report::{Key, Results};
use servers::Server;

/// The core the servers run on; the load generator takes the other.
const SERVER_CORE: usize = 0;
const LOAD_CORE: usize = 1;

/// What one bench run covers.
struct Matrix {
    sizes: &'static [usize],
    connections: &'static [usize],
    /// Open-loop rates as percentages of tokio current_thread's throughput.
    loads: &'static [u32],
    rounds: usize,
    warmup: Duration,
    measure: Duration,
}

const FULL: Matrix = Matrix {
    sizes: &[64, 1024],
    connections: &[1, 64, 1000],
    loads: &[10, 50, 90],
    rounds: 2,
    warmup: Duration::from_millis(300),
    measure: Duration::from_millis(1000),
};

const QUICK: Matrix = Matrix {
    sizes: &[64],
    connections: &[1, 16],
    loads: &[50],
    rounds: 1,
    warmup: Duration::from_millis(10),
    measure: Duration::from_millis(40),
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn number<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> io::Result<T> {
    match arg(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| io::Error::other(format!("{name}: not a number: {v}"))),
    }
}

/// The lowest saturation the open-loop rates are based on, messages per
/// second (see its use).
const MIN_RATE: f64 = 10.0;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(name) = arg(&args, "--serve") {
        let server = Server::by_name(&name)
            .ok_or_else(|| io::Error::other(format!("--serve: no server called {name}")))?;
        let addr = server.start(SERVER_CORE, number(&args, "--port", 7100)?)?;
        eprintln!("{} echoing on {addr} until stdin closes", server.name());
        // Stdin's end is the signal to stop (how `--syscalls` ends a server
        // running under strace, so strace sees it exit and sums up).
        io::Read::read_to_end(&mut io::stdin(), &mut Vec::new())?;
        std::process::exit(0);
    }
    if let Some(addr) = arg(&args, "--load") {
        return load_only(&args, &addr);
    }
    if args.iter().any(|a| a == "--syscalls") {
        // Not pinned here: the counters spawned from this thread must not
        // inherit the load generator's core (see `syscalls.rs`).
        let connections = match arg(&args, "--connections") {
            Some(_) => vec![number(&args, "--connections", 1)?],
            None => vec![1, 64],
        };
        let md = syscalls::report(
            number(&args, "--messages", 100_000)?,
            number(&args, "--size", 64)?,
            &connections,
            LOAD_CORE,
            &machine::machine(),
        )?;
        println!("{md}");
        std::fs::create_dir_all("benches/results")?;
        std::fs::write("benches/results/syscalls.md", md)?;
        return Ok(());
    }
    let full = args.iter().any(|a| a == "--bench");
    if !full {
        syscalls::check_parsers()?;
    }
    let only: Option<Server> = arg(&args, "--only").and_then(|n| Server::by_name(&n));
    let (matrix, out) = if full {
        (FULL, std::path::PathBuf::from("benches/results"))
    } else {
        (QUICK, std::path::PathBuf::from("target/bench-results"))
    };

    let servers: Vec<(Server, SocketAddr)> = Server::ALL
        .into_iter()
        .filter(|s| only.is_none_or(|o| o == *s || *s == Server::TokioCt))
        .map(|s| s.start(SERVER_CORE, 0).map(|addr| (s, addr)))
        .collect::<io::Result<_>>()?;
    pin::pin_to(LOAD_CORE);

    let mut results = Results::default();
    for round in 0..matrix.rounds {
        for &size in matrix.sizes {
            for &connections in matrix.connections {
                // Alternate the order from round to round.
                let mut order = servers.clone();
                let turn = round % order.len();
                order.rotate_left(turn);
                let mut saturation = None;
                for &(server, addr) in &order {
                    let plan = Plan {
                        addr,
                        size,
                        connections,
                        mode: Mode::Closed,
                        warmup: matrix.warmup,
                        measure: matrix.measure,
                        messages: None,
                    };
                    let outcome = load::run(&plan)?;
                    if server == Server::TokioCt {
                        saturation = Some(outcome.messages as f64 / plan.measure.as_secs_f64());
                    }
                    results.add(
                        Key {
                            server,
                            size,
                            connections,
                            load: 0,
                        },
                        0.0,
                        outcome,
                    );
                }
                // A closed-loop round starved by other load (a quick window
                // on a busy machine) can echo nothing: the open loop still
                // needs a rate to send at, and a zero rate has no send times.
                let saturation = saturation
                    .expect("tokio current_thread is always measured")
                    .max(MIN_RATE);
                for &percent in matrix.loads {
                    let rate = saturation * f64::from(percent) / 100.0;
                    for &(server, addr) in &order {
                        let plan = Plan {
                            addr,
                            size,
                            connections,
                            mode: Mode::Open { rate },
                            warmup: matrix.warmup,
                            measure: matrix.measure,
                            messages: None,
                        };
                        let outcome = load::run(&plan)?;
                        results.add(
                            Key {
                                server,
                                size,
                                connections,
                                load: percent,
                            },
                            rate,
                            outcome,
                        );
                    }
                }
                eprintln!("round {round}: {size} B, {connections} connection(s) done");
            }
        }
    }
    let machine = machine::machine();
    let markdown = results.markdown(&machine, full);
    println!("{markdown}");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("echo.md"), &markdown)?;
    std::fs::write(out.join("echo_summary.md"), results.summary(&machine, full))?;
    std::fs::write(out.join("echo.json"), results.json(&machine))?;
    std::fs::write(out.join("echo.svg"), results.svg(&machine))?;
    eprintln!(
        "wrote echo.md, echo_summary.md, echo.json and echo.svg in {}",
        out.display()
    );
    Ok(())
}

/// `--load`: exactly `--messages` echoes in a closed loop, for syscall counts.
fn load_only(args: &[String], addr: &str) -> io::Result<()> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| io::Error::other(format!("--load: not an address: {addr}")))?;
    pin::pin_to(LOAD_CORE);
    let plan = Plan {
        addr,
        size: number(args, "--size", 64)?,
        connections: number(args, "--connections", 1)?,
        mode: Mode::Closed,
        warmup: Duration::ZERO,
        measure: Duration::from_secs(3600),
        messages: Some(number(args, "--messages", 100_000)?),
    };
    if plan.size == 0 || plan.connections == 0 {
        return Err(io::Error::other(
            "--size and --connections must be at least 1",
        ));
    }
    let outcome = load::run(&plan)?;
    let h = &outcome.latency;
    println!(
        "{} messages in {:.3} s: {:.0} msg/s, p50 {:.1} µs, p99 {:.1} µs",
        outcome.messages,
        outcome.elapsed.as_secs_f64(),
        outcome.messages as f64 / outcome.elapsed.as_secs_f64(),
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
    );
    Ok(())
}
