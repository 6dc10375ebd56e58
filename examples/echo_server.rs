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

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use log::{info, warn};
use trapline::net::{TcpListener, TcpStream};

const USAGE: &str =
    "usage: echo_server [--addr IP:PORT] [--threads N]   (default 127.0.0.1:7000, 1 thread)";

/// What the command line asks for: serve on an address, or print the usage.
enum Command {
    Serve(SocketAddr, usize),
    Help,
}

fn parse_args() -> Result<Command, String> {
    let mut addr: SocketAddr = "127.0.0.1:7000".parse().expect("a valid default address");
    let mut threads = 1;
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
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Command::Serve(addr, threads))
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

async fn serve(addr: SocketAddr, reuse_port: bool) -> io::Result<()> {
    let listener = TcpListener::builder(addr).reuse_port(reuse_port).bind()?;
    println!("echo_server listening on {}", listener.local_addr()?);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of fds, or the peer gave up between SYN and accept:
                // back off a little instead of spinning on the error.
                warn!("accept failed: {e}");
                trapline::sleep(Duration::from_millis(10)).await?;
                continue;
            }
        };
        stream.set_nodelay(true)?;
        let name = format!("conn {peer}");
        trapline::task::Builder::new()
            .name(name)
            .spawn(async move {
                match echo(stream).await {
                    Ok(bytes) => info!("{peer}: closed after {bytes} bytes"),
                    Err(e) => info!("{peer}: {e}"),
                }
            })?;
    }
}

fn main() {
    env_logger::init();
    let (addr, threads) = match parse_args() {
        Ok(Command::Serve(addr, threads)) => (addr, threads),
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
        trapline::run(serve(addr, false)).and_then(|served| served)
    } else {
        // One kernel per thread, each with its own listener on the port.
        trapline::run_threads(threads, |_| serve(addr, true))
            .and_then(|all| all.into_iter().collect::<io::Result<Vec<()>>>().map(drop))
    };
    if let Err(e) = outcome {
        eprintln!("echo_server: {addr}: {e}");
        std::process::exit(1);
    }
}
