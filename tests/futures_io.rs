//! `futures::io` utilities over trapline streams: copy, BufReader lines,
//! read_to_end, write_all, close, on TCP, Unix streams and owned halves.
//!
//! The streams have inherent `read`/`write_all` methods of their own, which
//! method lookup prefers, so the trait methods are called by their full
//! path here: these tests are about the trait impls.

mod util;

use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use futures::StreamExt;
use trapline::net::UnixStream;
use trapline::{spawn, TrapError};
use util::{run_clean, tcp_pair, Rng};

/// `futures::io::copy` moves a megabyte from one TCP stream into another,
/// byte-exact, and ends at the source's end of stream.
#[test]
fn copy_between_tcp_streams_is_byte_exact() {
    run_clean(async {
        let (src_client, src_server) = tcp_pair().await.unwrap();
        let (dst_client, dst_server) = tcp_pair().await.unwrap();
        let payload = Rng::new(5).bytes(1 << 20);
        let writer = {
            let payload = payload.clone();
            spawn(async move {
                let mut src_client = src_client;
                AsyncWriteExt::write_all(&mut src_client, &payload).await?;
                src_client.close().await
            })
            .unwrap()
        };
        let copier = spawn(async move {
            let mut dst = dst_client;
            let n = futures::io::copy(src_server, &mut dst).await?;
            dst.close().await?;
            Ok::<_, std::io::Error>(n)
        })
        .unwrap();
        let mut got = Vec::new();
        let mut dst_server = dst_server;
        dst_server.read_to_end(&mut got).await.unwrap();
        writer.join().await.unwrap().unwrap();
        assert_eq!(copier.join().await.unwrap().unwrap(), 1 << 20);
        assert_eq!(got, payload);
    });
}

/// `BufReader::lines` over a Unix stream yields exactly the lines written,
/// in order, then ends.
#[test]
fn bufreader_lines_over_a_unix_stream() {
    run_clean(async {
        let (a, b) = UnixStream::pair().unwrap();
        let writer = spawn(async move {
            let mut a = a;
            for i in 0..100 {
                AsyncWriteExt::write_all(&mut a, format!("line {i}\n").as_bytes()).await?;
            }
            AsyncWriteExt::write_all(&mut a, b"last, no newline").await?;
            a.close().await
        })
        .unwrap();
        let lines: Vec<String> = BufReader::new(b)
            .lines()
            .map(|l| l.unwrap())
            .collect()
            .await;
        writer.join().await.unwrap().unwrap();
        let mut want: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        want.push("last, no newline".into());
        assert_eq!(lines, want);
    });
}

/// Through `&TcpStream`, one task reads with `read_exact` while another
/// writes with `write_all`; through owned halves, `copy` echoes.
#[test]
fn shared_references_and_owned_halves_work_as_async_io() {
    run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let (server_read, mut server_write) = server.into_split();
        let echo = spawn(async move {
            let n = futures::io::copy(server_read, &mut server_write).await?;
            server_write.close().await?;
            Ok::<_, std::io::Error>(n)
        })
        .unwrap();
        let client = std::rc::Rc::new(client);
        let sender = {
            let client = client.clone();
            spawn(async move {
                let mut w: &trapline::net::TcpStream = &client;
                AsyncWriteExt::write_all(&mut w, b"echo me, please").await?;
                w.close().await
            })
            .unwrap()
        };
        let mut r: &trapline::net::TcpStream = &client;
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"echo me, please");
        sender.join().await.unwrap().unwrap();
        assert_eq!(echo.join().await.unwrap().unwrap(), 15);
    });
}

/// A `futures::io` read waiting on a quiet socket is a trap like any other:
/// cancelling the task ends it with `Cancelled`, and nothing is left behind.
#[test]
fn a_futures_io_read_is_cancellable() {
    run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let reader = spawn(async move {
            let mut server = server;
            let mut buf = [0; 8];
            AsyncReadExt::read(&mut server, &mut buf).await
        })
        .unwrap();
        trapline::yield_now().await.unwrap();
        let ended = reader.cancel().await.unwrap();
        let err = ended.unwrap_err();
        assert_eq!(TrapError::from_io(&err), Some(&TrapError::Cancelled));
        drop(client);
    });
}

/// Data already there is read at the first poll, with no trap: the adapter
/// tries the syscall before it waits.
#[test]
fn a_futures_io_read_tries_before_it_traps() {
    let (_, stats) = util::run_with_stats(async {
        let (client, server) = tcp_pair().await.unwrap();
        client.write_all(b"ready").await.unwrap();
        // Let the bytes cross loopback before reading.
        let mut peek = [0; 5];
        server.peek(&mut peek).await.unwrap();
        let mut server = server;
        let mut buf = [0; 5];
        let read = futures::poll!(Box::pin(AsyncReadExt::read(&mut server, &mut buf)));
        assert!(matches!(read, std::task::Poll::Ready(Ok(5))), "{read:?}");
        assert_eq!(&buf, b"ready");
    });
    util::assert_clean(&stats);
}
