//! The chat server example: broadcast to every other client, and a client
//! that never reads is disconnected instead of stalling the room.

mod util;

#[allow(dead_code)]
#[path = "../examples/chat_server.rs"]
mod chat_server;

use futures::io::{AsyncBufReadExt, BufReader};
use trapline::net::{TcpListener, TcpStream};
use trapline::{spawn, TrapError};
use util::run_clean;

/// Reads exactly one line (through a `futures::io::BufReader`).
async fn read_line(reader: &mut BufReader<&TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    line
}

/// Client 2 sends 10,000 lines of 1 KB. Client 1 reads along and gets every
/// one of them, in order; client 3 never reads, so its socket fills, its
/// outbox fills, and it is cut off (the others hear that it left) — the
/// sender and the fast reader are never held up by it.
#[test]
fn a_slow_client_is_dropped_and_the_others_get_every_line() {
    const LINES: usize = 10_000;
    run_clean(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(chat_server::serve(listener)).unwrap();

        let fast_stream = TcpStream::connect(addr).await.unwrap();
        let mut fast = BufReader::new(&fast_stream);
        let sender = TcpStream::connect(addr).await.unwrap();
        assert_eq!(read_line(&mut fast).await, "* 2 joined\n");
        let slow = TcpStream::connect(addr).await.unwrap();
        slow.set_recv_buffer_size(4096).unwrap();
        assert_eq!(read_line(&mut fast).await, "* 3 joined\n");

        let line = |i: usize| format!("line {i:05} {}", "x".repeat(1000));
        let flood = spawn(async move {
            let mut all = String::new();
            for i in 0..LINES {
                all.push_str(&line(i));
                all.push('\n');
            }
            sender.write_all(all.as_bytes()).await?;
            Ok::<_, std::io::Error>(sender)
        })
        .unwrap();

        // The fast client reads every line from the sender, in order; it
        // also hears that the slow one has gone.
        let mut next = 0;
        let mut left = 0;
        while next < LINES {
            let got = read_line(&mut fast).await;
            if got == "* 3 left\n" {
                left += 1;
                continue;
            }
            assert_eq!(got, format!("2: {}\n", line(next)));
            next += 1;
        }
        let _sender = flood.join().await.unwrap().unwrap();

        // The server cut the slow client off: it said so to the others.
        if left == 0 {
            assert_eq!(read_line(&mut fast).await, "* 3 left\n");
        }
        // What the slow client has is the sender's lines from the start.
        let mut slow = BufReader::new(&slow);
        assert_eq!(read_line(&mut slow).await, format!("2: {}\n", line(0)));
        let ended = server.cancel().await.unwrap();
        assert!(TrapError::is_cancellation(&ended.unwrap_err()));
    });
}
