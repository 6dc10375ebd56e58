//! One echo round trip, with every trap and resume printed: the example that
//! `docs/how-it-works.md` follows line by line.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example round_trip
//! ```
//!
//! An echo task (`echo`) accepts one connection, reads what comes and writes
//! it back. The client is a plain blocking `std` socket, so the only traps in
//! the trace are the echo task's and the main task's. The main task steps
//! aside (`yield_now`) until the echo task waits in its read, then sends
//! `ping`: the read's trap, the park, the event and the resume all show.
//! The trace goes to stderr through env_logger (`trapline::trap=trace`
//! unless `RUST_LOG` says otherwise); `docs/regen.sh` copies it into the
//! guide, and `tests/guide.rs` fails if the guide and this output part.

use std::io::{self, Read, Write};

use trapline::net::TcpListener;
use trapline::task::Builder;
use trapline::yield_now;

/// The round trip; returns what came back.
pub fn round_trip() -> io::Result<Vec<u8>> {
    trapline::run(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let addr = listener.local_addr()?;
        let echo = Builder::new().name("echo").spawn(async move {
            let (stream, _) = listener.accept().await?;
            let mut buf = [0; 64];
            let n = stream.read(&mut buf).await?;
            stream.write_all(&buf[..n]).await?;
            Ok::<_, io::Error>(n)
        })?;
        yield_now().await?; // echo runs, and waits to accept
        let mut client = std::net::TcpStream::connect(addr)?;
        yield_now().await?; // the listener's event is seen; echo is ready
        yield_now().await?; // echo accepts, and waits to read
        client.write_all(b"ping")?;
        echo.join().await??; // echo reads, writes back, ends
        let mut back = [0; 4];
        client.read_exact(&mut back)?;
        Ok(back.to_vec())
    })?
}

#[allow(dead_code)] // `tests/guide.rs` includes this file for `round_trip` alone
fn main() -> io::Result<()> {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("trapline::trap=trace"),
    )
    .format(|buf, record| {
        writeln!(
            buf,
            "{:<5} {}] {}",
            record.level(),
            record.target(),
            record.args()
        )
    })
    .init();
    let back = round_trip()?;
    println!("echoed {:?}", String::from_utf8_lossy(&back));
    Ok(())
}
