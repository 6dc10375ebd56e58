//! An echo server: one task per connection, everything read is written back.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:7000
//! ```
//!
//! `--threads N` runs N kernels on N threads, each with its own
//! `SO_REUSEPORT` listener on the address (default 1).
//!
//! and talk to it with `nc 127.0.0.1 7000`, or load it with
//! `cargo run --release --example echo_client`. `RUST_LOG=trapline=trace`
//! shows every trap and resume; `RUST_LOG=info` one line per connection.
//! With `TRAPLINE_MONITOR=1`, `nc 127.0.0.1 48802` opens the monitor: `ps`
//! lists the `conn` task of each peer and the trap it waits on.
//!
//! Ctrl-C (SIGINT) or SIGTERM shuts it down gracefully: it stops accepting,
//! lets the open connections finish for up to `--grace` seconds (default 5),
//! cancels those still open after that or on a second signal, and exits 0.
//! With `--threads N`, every kernel does so for its own connections.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use log::{info, warn};
use trapline::net::{TcpListener, TcpStream};
use trapline::signal::{Signals, SIGINT, SIGTERM};
use trapline::{timeout_after, GroupError, Policy, TaskGroup};

const USAGE: &str = "usage: echo_server [--addr IP:PORT] [--threads N] [--grace SECS]   \
                     (default 127.0.0.1:7000, 1 thread, 5 s)";

/// What the command line asks for: serve on an address with some threads
/// (and how long open connections may go on after a shutdown signal), or
/// print the usage.
enum Command {
    Serve(SocketAddr, usize, Duration),
    Help,
}

fn parse_args() -> Result<Command, String> {
    let mut addr: SocketAddr = "127.0.0.1:7000".parse().expect("a valid default address");
    let mut threads = 1;
    let mut grace = Duration::from_secs(5);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args
                    .next()
                    .ok_or(format!("--addr needs a value\n{USAGE}"))?;
                addr = value.parse().map_err(|e| {
                    format!("--addr {value:?}: {e} (want IP:PORT, e.g. 127.0.0.1:7000)")
                })?;
            }
            "--threads" => {
                let value = args
                    .next()
                    .ok_or(format!("--threads needs a value\n{USAGE}"))?;
                threads = match value.parse::<usize>() {
                    Ok(n @ 1..=1024) => n,
                    _ => return Err(format!("--threads {value:?}: want a number from 1 to 1024")),
                };
            }
            "--grace" => {
                let value = args
                    .next()
                    .ok_or(format!("--grace needs a value\n{USAGE}"))?;
                let secs: u64 = value
                    .parse()
                    .map_err(|e| format!("--grace {value:?}: {e} (want whole seconds)"))?;
                grace = Duration::from_secs(secs);
            }
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Command::Serve(addr, threads, grace))
}

/// Echoes until the peer closes its side, then closes ours.
async fn echo(stream: TcpStream) -> io::Result<u64> {
    let mut buf = vec![0; 16 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Accepts connections into `connections` until cancelled (or a fatal error).
async fn accept_loop(
    listener: TcpListener,
    connections: TaskGroup<(), io::Error>,
) -> io::Result<i32> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if trapline::TrapError::from_io(&e).is_some() => return Err(e), // cancelled
            Err(e) => {
                // Out of fds, or the peer gave up between SYN and accept:
                // back off a little instead of spinning on the error.
                warn!("accept failed: {e}");
                trapline::sleep(Duration::from_millis(10)).await?;
                continue;
            }
        };
        stream.set_nodelay(true)?;
        connections.spawn_named(format!("conn {peer}"), async move {
            match echo(stream).await {
                Ok(bytes) => info!("{peer}: closed after {bytes} bytes"),
                Err(e) => info!("{peer}: {e}"),
            }
            Ok(())
        })?;
        // Each connection logged its own end; the group need not keep them.
        drop(connections.take_finished());
    }
}

async fn serve(addr: SocketAddr, reuse_port: bool, grace: Duration) -> io::Result<()> {
    let signals = Rc::new(Signals::new(&[SIGINT, SIGTERM])?);
    let listener = TcpListener::builder(addr).reuse_port(reuse_port).bind()?;
    println!("echo_server listening on {}", listener.local_addr()?);
    let connections = TaskGroup::<(), io::Error>::new();

    // Accept until a signal: whichever of the two tasks ends first, the
    // group cancels the other (and with the accept loop goes the listener).
    let front = TaskGroup::<i32, io::Error>::with_policy(Policy::Any);
    let s = signals.clone();
    front.spawn(async move { s.recv().await })?;
    front.spawn(accept_loop(listener, connections.clone()))?;
    let signal = match front.join().await {
        Ok(Some(signal)) => signal,
        Ok(None) => return Ok(()),
        Err(GroupError::Task { failure, .. }) => return Err(io::Error::other(failure.to_string())),
        Err(GroupError::Interrupted(e)) => return Err(e.into()),
    };
    let name = if signal == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    println!(
        "echo_server: {name}: stopped accepting; {} connection(s) open, waiting up to {grace:?}",
        connections.running()
    );

    // Let them finish, until the grace period ends or a second signal comes;
    // then the cascade cancels what is left.
    let closing = TaskGroup::<&str, io::Error>::with_policy(Policy::Any);
    let c = connections.clone();
    closing.spawn(async move {
        let _ = c.join().await;
        Ok("all connections closed")
    })?;
    closing.spawn(async move {
        signals.recv().await?;
        Ok("second signal: open connections cancelled")
    })?;
    let how = match timeout_after(grace, closing.join()).await {
        Ok(Ok(Some(how))) => how,
        _ => "grace period over: open connections cancelled",
    };
    connections.cancel_remaining().await?;
    println!("echo_server: {how}");
    Ok(())
}

fn main() {
    env_logger::init();
    let (addr, threads, grace) = match parse_args() {
        Ok(Command::Serve(addr, threads, grace)) => (addr, threads, grace),
        Ok(Command::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("echo_server: {msg}");
            std::process::exit(2);
        }
    };
    let outcome = if threads == 1 {
        trapline::run(serve(addr, false, grace)).and_then(|served| served)
    } else {
        // One kernel per thread, each with its own listener on the port.
        trapline::run_threads(threads, |_| serve(addr, true, grace))
            .and_then(|all| all.into_iter().collect::<io::Result<Vec<()>>>().map(drop))
    };
    if let Err(e) = outcome {
        eprintln!("echo_server: {addr}: {e}");
        std::process::exit(1);
    }
}
