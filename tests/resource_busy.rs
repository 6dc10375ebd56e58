//! One reader and one writer per fd (Curio's rule): a second leaf waiting on
//! the same fd in the same direction — from another task, or from the same
//! task through a combinator — gets `ResourceBusy`, never a silent steal; the
//! leaf already waiting is undisturbed; a reader and a writer on the same
//! stream do not get in each other's way; and after a `ResourceBusy` the fd
//! works as before.

mod util;

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use trapline::net::{TcpListener, TcpStream};
use trapline::{sleep, spawn, timeout_after, yield_now, TrapError};
use util::{run_clean, tcp_pair, Rng};

/// Asserts that `result` is the `ResourceBusy` error, both as the trap error
/// it carries and as its `io::ErrorKind`.
#[track_caller]
fn assert_busy<T: std::fmt::Debug>(result: io::Result<T>) {
    let err = result.expect_err("expected ResourceBusy");
    assert_eq!(
        TrapError::from_io(&err),
        Some(&TrapError::ResourceBusy),
        "{err}"
    );
    assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);
}

/// How an I/O call ended, for failure messages.
fn outcome<T: std::fmt::Debug>(result: &io::Result<T>) -> String {
    match result {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({:?}: {e})", e.kind()),
    }
}

/// Reads exactly `len` bytes from `stream`.
async fn read_n(stream: &TcpStream, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Two tasks read the same `Rc<TcpStream>` while it has no data: the first
/// is seated as the fd's reader, the second gets `ResourceBusy`. The first
/// is still waiting afterwards and gets exactly the bytes written next; then
/// a later read of the fd, which must wait, succeeds normally.
#[test]
fn second_reading_task_gets_resource_busy() -> io::Result<()> {
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let server = Rc::new(server);
        let first = spawn({
            let server = server.clone();
            async move { read_n(&server, 5).await }
        })?;
        let second = spawn({
            let server = server.clone();
            async move {
                let mut buf = [0; 16];
                server.read(&mut buf).await
            }
        })?;
        // Both were started in this order; the second ends with its error.
        assert_busy(second.join().await?);

        // The first reader was not disturbed: still waiting, then served.
        for _ in 0..3 {
            yield_now().await?;
        }
        assert!(!first.is_finished(), "the first reader must still wait");
        client.write_all(b"hello").await?;
        assert_eq!(first.join().await??, b"hello");

        // The seat is free again: a reader that has to wait is seated and served.
        let writer = spawn(async move {
            yield_now().await?;
            client.write_all(b"again").await?;
            Ok::<_, io::Error>(client)
        })?;
        assert_eq!(read_n(&server, 5).await?, b"again");
        let client = writer.join().await??;
        drop(client);
        let mut buf = [0; 4];
        assert_eq!(
            server.read(&mut buf).await?,
            0,
            "EOF after the client closes"
        );
        Ok(())
    })
}

/// The task that got `ResourceBusy` may itself read the same fd once the
/// first reader is done: the error leaves nothing behind in it.
#[test]
fn task_that_got_resource_busy_reads_again_later() -> io::Result<()> {
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let server = Rc::new(server);
        let first = spawn({
            let server = server.clone();
            async move { read_n(&server, 3).await }
        })?;
        let first_done = Rc::new(Cell::new(false));
        let second = spawn({
            let server = server.clone();
            let first_done = first_done.clone();
            async move {
                let mut buf = [0; 16];
                let busy = server.read(&mut buf).await;
                // Step aside (bounded) until the first reader has left its seat.
                for _ in 0..1_000 {
                    if first_done.get() {
                        break;
                    }
                    yield_now().await?;
                }
                assert!(first_done.get(), "the first reader never finished");
                // Now wait, as the fd's reader, for the next bytes.
                let later = read_n(&server, 5).await;
                Ok::<_, io::Error>((busy, later))
            }
        })?;
        // Let both start: the first is seated, the second is refused.
        for _ in 0..3 {
            yield_now().await?;
        }
        client.write_all(b"one").await?;
        assert_eq!(first.join().await??, b"one");
        first_done.set(true);
        // Give the second task time to trap as the reader before writing.
        for _ in 0..3 {
            yield_now().await?;
        }
        client.write_all(b"later").await?;
        let (busy, later) = second.join().await??;
        assert_busy(busy);
        assert_eq!(later?, b"later");
        Ok(())
    })
}

/// Two read leaves of the same task polled by one `join!`: the first one
/// polled takes the reader seat, the second gets `ResourceBusy` (exactly
/// one of them). The first is undisturbed and gets exactly the bytes a
/// third branch writes afterwards; the fd then reads normally again.
#[test]
fn two_read_leaves_of_one_task_one_gets_resource_busy() -> io::Result<()> {
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let mut a = [0; 16];
        let mut b = [0; 16];
        let (ra, rb, written) = futures::join!(server.read(&mut a), server.read(&mut b), async {
            // Write only once both reads have trapped.
            yield_now().await?;
            client.write_all(b"data").await?;
            Ok::<_, io::Error>(())
        });
        written?;
        let busy = [&ra, &rb]
            .iter()
            .filter(|r| {
                r.as_ref()
                    .is_err_and(|e| TrapError::from_io(e) == Some(&TrapError::ResourceBusy))
            })
            .count();
        assert_eq!(busy, 1, "exactly one leaf gets ResourceBusy: {ra:?} {rb:?}");
        assert_eq!(ra?, 4, "the first leaf polled keeps the seat");
        assert_eq!(&a[..4], b"data");
        assert_busy(rb);

        // A later read that waits succeeds: the seat was not left stale.
        let (read, written) = futures::join!(read_n(&server, 4), async {
            yield_now().await?;
            client.write_all(b"more").await
        });
        written?;
        assert_eq!(read?, b"more");
        Ok(())
    })
}

/// The same rule inside a combinator that polls each child under its own
/// waker (`FuturesUnordered`): of two reads of one stream, the first polled
/// is seated and the second gets `ResourceBusy` — its child is re-polled
/// through its own waker to learn it — while the seated one is woken, again
/// through its own waker, when the bytes arrive.
#[test]
fn two_read_leaves_in_futures_unordered_one_gets_resource_busy() -> io::Result<()> {
    use futures::stream::{FuturesUnordered, StreamExt};
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let writer = spawn(async move {
            for _ in 0..3 {
                yield_now().await?;
            }
            client.write_all(b"seated").await?;
            Ok::<_, io::Error>(client)
        })?;
        let mut reads: FuturesUnordered<_> = (0..2)
            .map(|which| {
                let server = &server;
                async move {
                    let mut buf = [0; 16];
                    let n = server.read(&mut buf).await;
                    (which, n.map(|n| buf[..n].to_vec()))
                }
            })
            .collect();
        let mut ended = Vec::new();
        while let Some(done) = reads.next().await {
            ended.push(done);
        }
        drop(reads);
        let _client = writer.join().await??;
        assert_eq!(ended.len(), 2);
        let (first, second) = (&ended[0], &ended[1]);
        // The refused leaf ends first, then the seated one gets the bytes.
        assert!(
            second.1.as_ref().is_ok_and(|b| b == b"seated"),
            "the seated leaf gets the bytes: {ended:?}"
        );
        assert_ne!(first.0, second.0);
        let err = first.1.as_ref().expect_err("the other leaf is refused");
        assert_eq!(TrapError::from_io(err), Some(&TrapError::ResourceBusy));
        Ok(())
    })
}

/// A reader waiting in one branch of a `join!` keeps the fd's reader seat
/// when a `timeout_after` in a sibling branch expires: the timeout is
/// scoped to its own branch, so the reader is undisturbed. Another task
/// that tries to read in the very pass where the timeout fires (it is made
/// ready by a sleep due just before the timeout, so it runs first) gets
/// `ResourceBusy`, and the waiting reader then gets the bytes.
///
/// Both deadlines are made to fall due in the same pass by one task that
/// blocks the kernel's thread past them; nothing is asserted about time.
#[test]
fn sibling_timeout_does_not_unseat_a_waiting_reader() -> io::Result<()> {
    // Regression: an interrupt used to undo *every* park of the task, so a
    // task polled first in the same pass could take the free reader seat.
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let server = Rc::new(server);
        let reader = spawn({
            let server = server.clone();
            async move {
                let mut buf = [0; 5];
                let (timed, read) = futures::join!(
                    timeout_after(Duration::from_millis(20), sleep(Duration::from_secs(3600))),
                    server.read_exact(&mut buf)
                );
                (timed, read.map(|()| buf))
            }
        })?;
        let intruder = spawn({
            let server = server.clone();
            async move {
                // Due 10 ms before the reader's timeout: fired first in the same pass.
                sleep(Duration::from_millis(10)).await?;
                let mut buf = [0; 5];
                let n = server.read(&mut buf).await?;
                Ok::<_, io::Error>(buf[..n].to_vec())
            }
        })?;
        let blocker = spawn(async {
            // Runs right after the two above trapped; holds the kernel's
            // thread until both deadlines have passed.
            std::thread::sleep(Duration::from_millis(50));
        })?;
        blocker.join().await?;
        // Let the expiry pass and the one after it run before writing.
        for _ in 0..3 {
            yield_now().await?;
        }
        client.write_all(b"hello").await?;

        let (timed, read) = reader.join().await?;
        assert!(matches!(timed, Err(TrapError::TimedOut(_))), "{timed:?}");
        let intruded = intruder.join().await?;
        assert!(
            matches!(&read, Ok(bytes) if bytes == b"hello"),
            "the waiting reader keeps its seat and gets the bytes; it got {}, the other task got {}",
            outcome(&read),
            outcome(&intruded),
        );
        assert_busy(intruded);
        Ok(())
    })
}

/// The rule holds for listeners too: of two tasks accepting on one
/// `Rc<TcpListener>`, the second gets `ResourceBusy` and the first, still
/// waiting, accepts the connection that comes next.
#[test]
fn second_accepting_task_gets_resource_busy() -> io::Result<()> {
    run_clean(async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0".parse().unwrap())?);
        let addr = listener.local_addr()?;
        let first = spawn({
            let listener = listener.clone();
            async move { listener.accept().await.map(|(_, peer)| peer) }
        })?;
        let second = spawn({
            let listener = listener.clone();
            async move { listener.accept().await.map(|(_, peer)| peer) }
        })?;
        assert_busy(second.join().await?);
        assert!(!first.is_finished(), "the first acceptor must still wait");
        let client = TcpStream::connect(addr).await?;
        assert_eq!(first.join().await??, client.local_addr()?);
        Ok(())
    })
}

/// Full duplex: on each end of a connection one task reads while another
/// task writes the same `Rc<TcpStream>`, with payloads large enough (1 MiB
/// each way) that reads and writes both wait. Nobody gets
/// `ResourceBusy` and all four directions' bytes arrive exactly.
#[test]
fn one_reader_and_one_writer_share_a_stream() -> io::Result<()> {
    const LEN: usize = 1 << 20;
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let (client, server) = (Rc::new(client), Rc::new(server));
        let up = Rng::new(11).bytes(LEN);
        let down = Rng::new(12).bytes(LEN);

        let mut tasks = Vec::new();
        for (from, to, payload) in [
            (client.clone(), server.clone(), up.clone()),
            (server.clone(), client.clone(), down.clone()),
        ] {
            let writer = spawn(async move { from.write_all(&payload).await })?;
            let reader = spawn(async move { read_n(&to, LEN).await })?;
            tasks.push((writer, reader));
        }
        let mut received = Vec::new();
        for (writer, reader) in tasks {
            writer.join().await??;
            received.push(reader.join().await??);
        }
        assert!(received[0] == up, "client -> server bytes differ");
        assert!(received[1] == down, "server -> client bytes differ");
        Ok(())
    })
}

/// Two writers on one stream: the first fills the send buffer (a 16 MiB
/// payload nobody reads yet) and waits as the fd's writer; a second task
/// writing then gets `ResourceBusy` and writes nothing. Once the peer drains
/// the stream, the first writer finishes with every byte in order, and the
/// writer seat is free for a later write.
#[test]
fn second_writing_task_gets_resource_busy_when_send_buffer_is_full() -> io::Result<()> {
    const LEN: usize = 16 << 20;
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let client = Rc::new(client);
        let first = spawn({
            let client = client.clone();
            async move { client.write_all(&pattern(LEN)).await }
        })?;
        let second = spawn({
            let client = client.clone();
            async move { client.write(&[0xFF]).await }
        })?;
        assert_busy(second.join().await?);
        assert!(!first.is_finished(), "the first writer must still wait");

        let all = read_n(&server, LEN).await?;
        first.join().await??;
        if all != pattern(LEN) {
            let at = all.iter().zip(pattern(LEN)).position(|(a, b)| *a != b);
            panic!("the drained bytes differ from the first writer's at {at:?}");
        }

        client.write_all(b"tail").await?;
        assert_eq!(read_n(&server, 4).await?, b"tail");
        Ok(())
    })
}
