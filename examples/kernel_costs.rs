//! The kernel's per-task costs, one operation repeated, for an instruction
//! counter: the same three workloads as `cargo bench --bench kernel`
//! (spawn + complete, yield, ping-pong), on trapline or on tokio
//! current_thread.
//!
//! Run it with:
//!
//! ```text
//! cargo build --release --example kernel_costs
//! valgrind --tool=callgrind target/release/examples/kernel_costs yield trapline 20000
//! valgrind --tool=callgrind target/release/examples/kernel_costs yield tokio 20000
//! ```
//!
//! Timings on a shared machine move from run to run; instruction counts do
//! not. Subtract a run with a count of 1 (start-up and shutdown) and divide
//! by the count to get instructions per operation.

use std::hint::black_box;
use std::process::ExitCode;
use std::rc::Rc;

use trapline::traps::TrapError;

#[path = "../benches/common/mailbox.rs"]
mod mailbox;
use mailbox::Mailbox;

/// `n` tasks spawned and joined one after the other.
async fn spawn_trapline(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    for i in 0..n {
        let task = trapline::spawn(async move { black_box(i) })?;
        black_box(task.join().await?);
    }
    Ok(())
}

/// Two tasks yielding to each other `n` times each.
async fn yield_trapline(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let other = trapline::spawn(async move {
        for _ in 0..n {
            trapline::yield_now().await?;
        }
        Ok::<(), TrapError>(())
    })?;
    for _ in 0..n {
        trapline::yield_now().await?;
    }
    other.join().await??;
    Ok(())
}

/// `n` round trips of a number between two tasks.
async fn ping_trapline(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let (ping, pong) = (Rc::new(Mailbox::new()), Rc::new(Mailbox::new()));
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        trapline::spawn(async move {
            for _ in 0..n {
                let v = ping.recv().await?;
                pong.send(v + 1)?;
            }
            Ok::<(), TrapError>(())
        })?
    };
    for i in 0..n {
        ping.send(i)?;
        let back = pong.recv().await?;
        if back != i + 1 {
            return Err(format!("sent {i}, got {back} back").into());
        }
    }
    echo.join().await??;
    Ok(())
}

async fn spawn_tokio(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    for i in 0..n {
        black_box(tokio::spawn(async move { black_box(i) }).await?);
    }
    Ok(())
}

async fn yield_tokio(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let other = tokio::spawn(async move {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
    });
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
    other.await?;
    Ok(())
}

async fn ping_tokio(n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let (ping_tx, mut ping_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let echo = tokio::spawn(async move {
        for _ in 0..n {
            let Some(v) = ping_rx.recv().await else { break };
            if pong_tx.send(v + 1).is_err() {
                break;
            }
        }
    });
    for i in 0..n {
        ping_tx.send(i)?;
        let back = pong_rx.recv().await.ok_or("the echo task ended")?;
        if back != i + 1 {
            return Err(format!("sent {i}, got {back} back").into());
        }
    }
    echo.await?;
    Ok(())
}

fn measure(what: &str, runtime: &str, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    match runtime {
        "trapline" => match what {
            "spawn" => trapline::run(spawn_trapline(n))?,
            "yield" => trapline::run(yield_trapline(n))?,
            "ping" => trapline::run(ping_trapline(n))?,
            _ => Err(format!("no operation called {what:?}").into()),
        },
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            match what {
                "spawn" => rt.block_on(spawn_tokio(n)),
                "yield" => rt.block_on(yield_tokio(n)),
                "ping" => rt.block_on(ping_tokio(n)),
                _ => Err(format!("no operation called {what:?}").into()),
            }
        }
        _ => Err(format!("no runtime called {runtime:?}").into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: kernel_costs spawn|yield|ping trapline|tokio COUNT";
    let [what, runtime, count] = args.as_slice() else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let Ok(n) = count.parse::<u64>() else {
        eprintln!("kernel_costs: COUNT must be a whole number, not {count:?}\n{usage}");
        return ExitCode::from(2);
    };
    match measure(what, runtime, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kernel_costs: {e}\n{usage}");
            ExitCode::FAILURE
        }
    }
}
