//! An echo server on a Unix domain socket, one task per connection.
//!
//! Run it and talk to it:
//!
//! ```text
//! cargo run --release --example unix_echo -- --path /tmp/trapline-echo.sock
//! python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect("/tmp/trapline-echo.sock"); s.sendall(b"hi"); print(s.recv(64))'
//! ```
//!
//! A socket file left by an earlier run that is not listening any more is
//! replaced; a live server's, or any other file, is left alone.
//! `--abstract NAME` listens on a Linux abstract name instead (no file).

use std::io;

use log::info;
use trapline::net::{UnixListener, UnixStream};

const USAGE: &str =
    "usage: unix_echo [--path FILE | --abstract NAME]   (default --path /tmp/trapline-echo.sock)";

async fn echo(stream: UnixStream) -> io::Result<u64> {
    let mut buf = vec![0; 16 * 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await? {
            0 => return Ok(total),
            n => {
                stream.write_all(&buf[..n]).await?;
                total += n as u64;
            }
        }
    }
}

async fn serve(listener: UnixListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        trapline::spawn(async move {
            match echo(stream).await {
                Ok(bytes) => info!("closed after {bytes} bytes"),
                Err(e) => info!("{e}"),
            }
        })?;
    }
}

fn main() {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => ("--path", "/tmp/trapline-echo.sock".to_string()),
        ["--path", p] => ("--path", p.to_string()),
        ["--abstract", n] => ("--abstract", n.to_string()),
        ["-h" | "--help"] => return println!("{USAGE}"),
        _ => {
            eprintln!("unix_echo: bad arguments\n{USAGE}");
            std::process::exit(2)
        }
    };
    let served = trapline::run(async {
        let listener = match target.0 {
            "--path" => UnixListener::bind_replacing_stale(&target.1)?,
            _ => UnixListener::bind_abstract(target.1.as_bytes())?,
        };
        println!("unix_echo on {:?}", listener.local_addr()?);
        serve(listener).await
    });
    if let Err(e) = served.and_then(|r| r) {
        eprintln!("unix_echo: {}: {e}", target.1);
        std::process::exit(1);
    }
}
