//! `futures::io` utilities over trapline streams: copy, BufReader lines,
//! read_to_end, write_all, close, on TCP, Unix streams and owned halves.
//!
//! The streams have inherent `read`/`write_all` methods of their own, which
//! method lookup prefers, so the trait methods are called by their full
//! path here: these tests are about the trait impls.

mod util;

use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use futures::StreamExt;
use std::time::Duration;

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

/// Two tasks polling reads on one shared stream: the second is the second
/// reader and gets `ResourceBusy` (contract 7); the first stays parked and
/// reads the bytes when they come. (Each task has its own leaf in the
/// stream's seat: with one shared leaf the second post moved the first
/// task's park and left it asleep for good.)
#[test]
fn two_tasks_poll_reading_one_stream_get_resource_busy() {
    run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let server = std::rc::Rc::new(server);
        let first = {
            let server = server.clone();
            spawn(async move {
                let mut buf = [0; 5];
                let n = AsyncReadExt::read(&mut &*server, &mut buf).await?;
                Ok::<_, std::io::Error>(buf[..n].to_vec())
            })
            .unwrap()
        };
        trapline::yield_now().await.unwrap(); // the first reader parks
        let second = {
            let server = server.clone();
            spawn(async move {
                let mut buf = [0; 5];
                AsyncReadExt::read(&mut &*server, &mut buf).await
            })
            .unwrap()
        };
        let second = trapline::timeout_after(Duration::from_secs(30), second.join())
            .await
            .expect("the second reader is answered, not left parked")
            .unwrap();
        assert_eq!(second.unwrap_err().kind(), std::io::ErrorKind::ResourceBusy);
        client.write_all(b"hello").await.unwrap();
        let first = trapline::timeout_after(Duration::from_secs(30), first.join())
            .await
            .expect("the first reader wakes for the bytes")
            .unwrap();
        assert_eq!(first.unwrap(), b"hello");
    });
}

/// A poll-style read that returned `Pending` and was abandoned leaves its
/// park in the stream's seat; the same task's next `read(..).await`
/// releases it before it traps, so it waits and reads instead of finding
/// itself `ResourceBusy`.
#[test]
fn an_abandoned_poll_read_does_not_make_the_tasks_next_read_busy() {
    run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let mut buf = [0; 5];
        {
            let mut shared = &server;
            let mut abandoned = Box::pin(AsyncReadExt::read(&mut shared, &mut buf));
            assert!(futures::poll!(abandoned.as_mut()).is_pending());
        }
        trapline::yield_now().await.unwrap(); // the park reaches the kernel
        let writer = spawn(async move {
            trapline::yield_now().await?;
            client.write_all(b"later").await?;
            Ok::<_, std::io::Error>(client)
        })
        .unwrap();
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"later");
        drop(writer.join().await.unwrap().unwrap());
    });
}

/// Records the (trap, line) of each task's last suspension.
#[derive(Default)]
struct LastParks(
    std::cell::RefCell<std::collections::HashMap<trapline::TaskId, Vec<(String, u32)>>>,
);

impl trapline::Hooks for LastParks {
    fn suspended(&self, task: trapline::TaskId, parks: &[trapline::Parked], _: std::time::Instant) {
        let parks = parks
            .iter()
            .map(|p| (p.trap.name().to_string(), p.location.line()))
            .collect();
        self.0.borrow_mut().insert(task, parks);
    }
}

/// A poll-style read reports the line of the user's `poll_read` call
/// (contract 13), not a line inside trapline.
#[test]
fn a_poll_read_reports_the_callers_line() {
    let parks = std::rc::Rc::new(LastParks::default());
    let mut kernel = trapline::Kernel::builder()
        .hooks(parks.clone())
        .build()
        .unwrap();
    let seen = parks.clone();
    kernel
        .run(async move {
            let (_client, server) = tcp_pair().await.unwrap();
            let (reader, line) = (
                spawn(async move {
                    let mut buf = [0; 4];
                    std::future::poll_fn(|cx| server.poll_read(cx, &mut buf)).await
                })
                .unwrap(),
                line!() - 3,
            );
            trapline::yield_now().await.unwrap();
            let got = seen.0.borrow().get(&reader.id()).cloned();
            assert_eq!(got, Some(vec![("ReadWait".to_string(), line)]));
            let err = reader.cancel().await.unwrap().unwrap_err();
            assert_eq!(TrapError::from_io(&err), Some(&TrapError::Cancelled));
        })
        .unwrap();
    util::assert_clean(&kernel.stats());
}
