//! A load client for `echo_server`: sends messages, checks every byte that
//! comes back, and prints round-trip percentiles.
//!
//! Run the server, then:
//!
//! ```text
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7000 --messages 10000 --size 64 --connections 1
//! ```
//!
//! Each connection is a trapline task that ping-pongs: write a message, read
//! it back, compare, repeat. Payloads are pseudo-random, so a byte out of
//! place is caught. Exits with status 1 on any mismatch or error.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use trapline::net::TcpStream;

struct Args {
    addr: SocketAddr,
    messages: usize,
    size: usize,
    connections: usize,
}

const USAGE: &str =
    "usage: echo_client [--addr IP:PORT] [--messages N] [--size BYTES] [--connections C]\n\
defaults: --addr 127.0.0.1:7000 --messages 10000 --size 64 --connections 1";

/// The largest message the client will send (each connection holds two).
const MAX_SIZE: usize = 16 << 20;

/// What the command line asks for: a load run, or the usage.
enum Command {
    Load(Args),
    Help,
}

fn parse_args() -> Result<Command, String> {
    let mut args = Args {
        addr: "127.0.0.1:7000".parse().expect("a valid default address"),
        messages: 10_000,
        size: 64,
        connections: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let known = ["--addr", "--messages", "--size", "--connections"];
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            f if !known.contains(&f) => return Err(format!("unknown argument {f:?}\n{USAGE}")),
            _ => {}
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}\n{USAGE}");
        match flag.as_str() {
            "--addr" => args.addr = value.parse().map_err(|e| bad(&e))?,
            "--messages" => args.messages = value.parse().map_err(|e| bad(&e))?,
            "--size" => args.size = value.parse().map_err(|e| bad(&e))?,
            _ => args.connections = value.parse().map_err(|e| bad(&e))?,
        }
    }
    if args.messages == 0 || args.connections == 0 {
        return Err(format!(
            "--messages and --connections must be at least 1\n{USAGE}"
        ));
    }
    if args.size == 0 || args.size > MAX_SIZE {
        return Err(format!("--size must be 1 to {MAX_SIZE} bytes\n{USAGE}"));
    }
    Ok(Command::Load(args))
}

/// xorshift64*: cheap, deterministic payloads.
fn fill(seed: &mut u64, buf: &mut [u8]) {
    for b in buf {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        *b = (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
    }
}

/// One connection's ping-pong loop; pushes each round trip into `rtts`.
async fn client(
    addr: SocketAddr,
    id: usize,
    messages: usize,
    size: usize,
    rtts: Rc<RefCell<Vec<Duration>>>,
) -> io::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1);
    let (mut out, mut back) = (vec![0; size], vec![0; size]);
    for n in 0..messages {
        fill(&mut seed, &mut out);
        let start = Instant::now();
        // Write and read at once (one writer, one reader on the stream): a
        // message larger than the socket buffers would otherwise deadlock,
        // each side waiting for the other to read.
        let (sent, got) = futures::join!(stream.write_all(&out), stream.read_exact(&mut back));
        sent?;
        got?;
        rtts.borrow_mut().push(start.elapsed());
        if out != back {
            let at = out.iter().zip(&back).position(|(a, b)| a != b).unwrap_or(0);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("connection {id}, message {n}: byte {at} came back wrong"),
            ));
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn load(args: Args) -> io::Result<()> {
    let rtts = Rc::new(RefCell::new(Vec::with_capacity(args.messages)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..args.connections {
        // Spread the messages evenly; the first connections take the remainder.
        let share =
            args.messages / args.connections + usize::from(id < args.messages % args.connections);
        let task = client(args.addr, id, share, args.size, rtts.clone());
        tasks.push(trapline::spawn(task)?);
    }
    for task in tasks {
        task.join().await??;
    }
    let elapsed = start.elapsed();
    let mut sorted = rtts.take();
    sorted.sort_unstable();
    // Written, not printed: a closed stdout (`| head -1`) is an error to
    // report, not a panic.
    let mut out = io::stdout().lock();
    if sorted.is_empty() {
        writeln!(out, "no messages sent")?;
        return Ok(());
    }
    let bytes = sorted.len() * args.size;
    writeln!(
        out,
        "{} messages of {} B over {} connection(s): {} bytes echoed and verified",
        sorted.len(),
        args.size,
        args.connections,
        bytes
    )?;
    writeln!(
        out,
        "throughput {:.0} msg/s; round trip p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        sorted.len() as f64 / elapsed.as_secs_f64(),
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        percentile(&sorted, 99.9),
        sorted[sorted.len() - 1],
    )?;
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(Command::Load(args)) => args,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("echo_client: {msg}");
            std::process::exit(2);
        }
    };
    let addr = args.addr;
    match trapline::run(load(args)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) | Err(e) => {
            eprintln!("echo_client: {addr}: {e}");
            std::process::exit(1);
        }
    }
}
