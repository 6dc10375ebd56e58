//! An echo server: one task per connection, everything read is written back.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:7000
//! ```
//!
//! `--threads N` runs N kernels on N threads, each with its own
//! `SO_REUSEPORT` listener on the address (default 1). The port is reserved
//! once before they start, so with port 0 every kernel listens on the same
//! (printed) port.
//!
//! and talk to it with `nc 127.0.0.1 7000`, or load it with
//! `cargo run --release --example echo_client`. `RUST_LOG=trapline=trace`
//! shows every trap and resume; `RUST_LOG=trapline::echo=debug` one line
//! per connection.
//!
//! The service is `trapline::echo::serve`, in each kernel: `--max-connections N` (default
//! 10000; more are accepted and closed at once), `--idle-timeout SECS`
//! (default 60; a connection with no progress that long is closed),
//! `--buffer BYTES` (default 16384 per connection: memory stays bounded even
//! when clients never read). Each must be above zero. Accept errors such as
//! running out of fds back off (1 ms doubling to 1 s) instead of spinning;
//! an error of the listener itself ends the server with that error.
//!
//! With `TRAPLINE_MONITOR=1`, `nc 127.0.0.1 48802` opens the monitor: `ps`
//! lists the `conn` task of each peer and the trap it waits on.
//!
//! Ctrl-C (SIGINT) or SIGTERM shuts it down gracefully: it stops accepting,
//! lets the open connections finish for up to `--grace SECS` (default 5),
//! cancels those still open after that or on a second signal, and exits 0.
//! With `--threads N`, every kernel does so for its own connections.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use trapline::echo::{serve_until, EchoConfig, EchoStats};
use trapline::net::TcpListener;
use trapline::signal::{Signals, SIGINT, SIGTERM};
use trapline::{timeout_after, Policy, TaskGroup};

const USAGE: &str = "usage: echo_server [--addr IP:PORT] [--threads N] [--max-connections N] [--idle-timeout SECS] [--buffer BYTES] [--grace SECS]
  defaults: --addr 127.0.0.1:7000 --threads 1 --max-connections 10000 (per thread) --idle-timeout 60 --buffer 16384 --grace 5";

/// What the command line asks for: serve on an address, or print the usage.
enum Command {
    /// Address, threads, and how long open connections may go on after a
    /// shutdown signal.
    Serve(SocketAddr, usize, Duration),
    Help,
}

/// The value of flag `name`, a positive number.
fn number(name: &str, value: Option<String>) -> Result<u64, String> {
    let value = value.ok_or(format!("{name} needs a value\n{USAGE}"))?;
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name} {value:?}: want a positive whole number")),
    }
}

fn parse_args(config: &mut EchoConfig) -> Result<Command, String> {
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
            "--max-connections" => {
                config.max_connections = number(&arg, args.next())? as usize;
            }
            "--idle-timeout" => {
                config.idle_timeout = Duration::from_secs(number(&arg, args.next())?);
            }
            "--buffer" => {
                let bytes = number(&arg, args.next())?;
                if bytes > 1 << 24 {
                    return Err(format!("--buffer {bytes}: at most 16 MiB per connection"));
                }
                config.buffer = bytes as usize;
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

/// Serves on `addr` until a signal; `announce` prints the address (one
/// kernel does).
async fn serve(
    addr: SocketAddr,
    reuse_port: bool,
    announce: bool,
    config: EchoConfig,
    grace: Duration,
) -> io::Result<()> {
    let signals = Rc::new(Signals::new(&[SIGINT, SIGTERM])?);
    let listener = TcpListener::builder(addr).reuse_port(reuse_port).bind()?;
    if announce {
        println!("echo_server listening on {}", listener.local_addr()?);
    }
    let stats = Rc::new(EchoStats::default());

    // Serve until a signal; then the listener is closed, and the service
    // hands back its connections still open.
    let (signal, open) = serve_until(listener, config, stats, signals.recv()).await?;
    let name = if signal? == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    println!(
        "echo_server: {name}: stopped accepting; {} connection(s) open, waiting up to {grace:?}",
        open.len()
    );

    // Let them finish, until the grace period ends or a second signal comes;
    // then cancel those still open.
    let open = Rc::new(open);
    let closing = TaskGroup::<&str, io::Error>::with_policy(Policy::Any);
    let all = open.clone();
    closing.spawn(async move {
        all.finished().await?;
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
    open.cancel().await;
    println!("echo_server: {how}");
    Ok(())
}

/// Binds (without listening) an `SO_REUSEPORT` socket to `addr`, so that a
/// port 0 becomes one real port that every kernel's listener joins; the
/// socket is held until the kernels end. A socket that does not listen is
/// given no connections.
fn reserve_port(addr: SocketAddr) -> io::Result<(socket2::Socket, SocketAddr)> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    let real = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("a TCP socket without an IP address"))?;
    Ok((socket, real))
}

fn main() {
    env_logger::init();
    let mut config = EchoConfig::default();
    let (addr, threads, grace) = match parse_args(&mut config) {
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
        trapline::run(serve(addr, false, true, config, grace)).and_then(|served| served)
    } else {
        // One kernel per thread, each with its own listener on the one port.
        reserve_port(addr).and_then(|(_reserved, addr)| {
            trapline::run_threads(threads, move |me| {
                serve(addr, true, me.index() == 0, config, grace)
            })
            .and_then(|all| all.into_iter().collect::<io::Result<Vec<()>>>().map(drop))
        })
    };
    if let Err(e) = outcome {
        eprintln!("echo_server: {addr}: {e}");
        std::process::exit(1);
    }
}
