//! A TCP proxy: every connection accepted on `--listen` is joined to a new
//! connection to `--to`, bytes copied both ways, half-closes passed through.
//!
//! Run it in front of the echo server:
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:7000
//! cargo run --release --example tcp_proxy -- --listen 127.0.0.1:7001 --to localhost:7000
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7001
//! ```
//!
//! `--to` may be a name: it is looked up once, at start, without blocking
//! the kernel; every connection then goes to the addresses found (the first
//! that answers).

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use log::info;
use trapline::net::{copy_bidirectional, lookup_host, TcpListener, TcpStream};

const USAGE: &str = "usage: tcp_proxy [--listen IP:PORT] [--to HOST:PORT]   (defaults 127.0.0.1:7001, 127.0.0.1:7000)";

async fn proxy(listen: SocketAddr, to: String) -> io::Result<()> {
    let listener = TcpListener::builder(listen).nodelay(true).bind()?;
    let targets: Rc<[SocketAddr]> = lookup_host(to.as_str())
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("--to {to}: {e}")))?
        .into();
    println!(
        "tcp_proxy: {} -> {to} ({targets:?})",
        listener.local_addr()?
    );
    loop {
        let (inbound, peer) = listener.accept().await?;
        let (to, targets) = (to.clone(), targets.clone());
        trapline::spawn(async move {
            let outbound = match TcpStream::connect(&targets[..]).await {
                Ok(s) => s,
                Err(e) => return info!("{peer}: cannot reach {to}: {e}"),
            };
            let _ = outbound.set_nodelay(true);
            match copy_bidirectional(inbound, outbound).await {
                Ok((up, down)) => info!("{peer}: {up} bytes up, {down} bytes down"),
                Err(e) => info!("{peer}: {e}"),
            }
        })?;
    }
}

fn main() {
    env_logger::init();
    let mut listen: SocketAddr = "127.0.0.1:7001".parse().expect("a valid default");
    let mut to = String::from("127.0.0.1:7000");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => {
                listen = v.parse().unwrap_or_else(|e| {
                    eprintln!("tcp_proxy: --listen {v:?}: {e}\n{USAGE}");
                    std::process::exit(2)
                })
            }
            ("--to", Some(v)) => to = v,
            ("-h" | "--help", _) => return println!("{USAGE}"),
            _ => {
                eprintln!("tcp_proxy: bad argument {arg:?}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    if let Err(e) = trapline::run(proxy(listen, to)).and_then(|r| r) {
        eprintln!("tcp_proxy: {e}");
        std::process::exit(1);
    }
}
