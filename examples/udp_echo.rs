//! A UDP echo server: every datagram goes back to its sender, unchanged.
//!
//! Run it and talk to it:
//!
//! ```text
//! cargo run --release --example udp_echo -- --addr 127.0.0.1:7002
//! python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"hi", ("127.0.0.1", 7002)); print(s.recv(64))'
//! ```
//!
//! `--once` answers one datagram and exits.

use std::io;
use std::net::SocketAddr;

use trapline::net::UdpSocket;

const USAGE: &str = "usage: udp_echo [--addr IP:PORT] [--once]   (default 127.0.0.1:7002)";

async fn echo(addr: SocketAddr, once: bool) -> io::Result<()> {
    let socket = UdpSocket::bind(addr)?;
    println!("udp_echo on {}", socket.local_addr()?);
    // The largest UDP payload: a datagram is never cut short here.
    let mut buf = vec![0; 65_536];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        socket.send_to(&buf[..n], from).await?;
        if once {
            return Ok(());
        }
    }
}

fn main() {
    let mut addr: SocketAddr = "127.0.0.1:7002".parse().expect("a valid default");
    let mut once = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let v = args.next().unwrap_or_default();
                addr = v.parse().unwrap_or_else(|e| {
                    eprintln!("udp_echo: --addr {v:?}: {e}\n{USAGE}");
                    std::process::exit(2)
                })
            }
            "--once" => once = true,
            "-h" | "--help" => return println!("{USAGE}"),
            other => {
                eprintln!("udp_echo: unknown argument {other:?}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    if let Err(e) = trapline::run(echo(addr, once)).and_then(|r| r) {
        eprintln!("udp_echo: {addr}: {e}");
        std::process::exit(1);
    }
}
