//! Skipping the `EAGAIN` read after a short read loses nothing: bytes that
//! arrive before the next read waits, after it waits, or the end of the
//! stream in the same edge as the last bytes all reach it; a read that filled
//! its buffer reads again; a read abandoned after its edge woke it leaves the
//! next read to try; one reader per stream still holds; and the skip happens
//! (the trace shows `ReadDrained` where `ReadWait` was).

mod util;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;

use std::os::fd::AsRawFd;
use std::task::Poll;

use trapline::sync::Event;
use trapline::{spawn, timeout_after, yield_now, TrapError};
use util::{run_clean, tcp_pair, trace, within_limit, WAKE_LIMIT as LIMIT};

/// The kernel sees the edge for "b" while nobody waits to read (the reader
/// is between reads): the read that follows the short read of "a" traps at
/// once and must be resumed by the kept edge, not left waiting forever.
#[test]
fn bytes_arriving_before_the_trap_are_not_lost() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let server = Rc::new(server);
        // A first read that waits registers the stream with the kernel.
        let reader = util::read_once(&server)?;
        yield_now().await?;
        client.write_all(b"a").await?;
        let first = reader.join().await??;
        // Short read done; "b" arrives and the kernel polls its edge before
        // the next read begins.
        client.write_all(b"b").await?;
        yield_now().await?;
        yield_now().await?;
        let mut buf = [0u8; 16];
        let n = within_limit(server.read(&mut buf)).await?;
        Ok::<_, io::Error>((first, buf[..n].to_vec()))
    })
    .unwrap();
    assert_eq!(got, (b"a".to_vec(), b"b".to_vec()));
}

/// Bytes that arrive after the trap wake it, message after message.
#[test]
fn bytes_arriving_after_the_trap_wake_it() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let echo = spawn(async move {
            let mut buf = [0u8; 64];
            let mut seen = Vec::new();
            loop {
                let n = server.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, io::Error>(seen);
                }
                seen.push(buf[..n].to_vec());
                server.write_all(&buf[..n]).await?;
            }
        })?;
        for word in [&b"one"[..], b"two", b"three"] {
            client.write_all(word).await?;
            let mut back = vec![0u8; word.len()];
            within_limit(client.read_exact(&mut back)).await?;
            assert_eq!(back, word);
        }
        drop(client);
        timeout_after(LIMIT, echo.join()).await??
    })
    .unwrap();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
}

/// A read that filled its buffer may have left bytes behind, for which no
/// new edge will come: the next read must try before it waits.
#[test]
fn a_full_read_tries_again_before_waiting() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let sent: Vec<u8> = (0..100).collect();
        client.write_all(&sent).await?;
        yield_now().await?;
        let mut got = Vec::new();
        for _ in 0..10 {
            let mut buf = [0u8; 10];
            let n = within_limit(server.read(&mut buf)).await?;
            got.extend_from_slice(&buf[..n]);
        }
        Ok::<_, io::Error>(got)
    })
    .unwrap();
    assert_eq!(got, (0..100).collect::<Vec<u8>>());
}

/// After a short read, the end of the stream wakes the waiting read, which
/// returns 0; a read after the end returns 0 again without waiting.
#[test]
fn end_of_stream_after_a_short_read() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        client.write_all(b"last").await?;
        let mut buf = [0u8; 16];
        let n = timeout_after(LIMIT, server.read(&mut buf)).await??;
        let first = buf[..n].to_vec();
        let closer = spawn(async move {
            yield_now().await?;
            drop(client);
            Ok::<(), TrapError>(())
        })?;
        let end = within_limit(server.read(&mut buf)).await?;
        let again = within_limit(server.read(&mut buf)).await?;
        closer.join().await??;
        Ok::<_, io::Error>((first, end, again))
    })
    .unwrap();
    assert_eq!(got, (b"last".to_vec(), 0, 0));
}

/// A read that waits without trying still holds the reader's seat: a second
/// reader gets `ResourceBusy`, and the first one gets the bytes.
#[test]
fn a_drained_read_still_holds_the_seat() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let server = Rc::new(server);
        client.write_all(b"x").await?;
        let mut buf = [0u8; 16];
        let n = timeout_after(LIMIT, server.read(&mut buf)).await??;
        assert_eq!(&buf[..n], b"x");
        let first = util::read_once(&server)?;
        yield_now().await?;
        let mut other = [0u8; 16];
        let busy = server.read(&mut other).await.unwrap_err();
        client.write_all(b"y").await?;
        let got = timeout_after(LIMIT, first.join()).await???;
        Ok::<_, io::Error>((TrapError::from_io(&busy).cloned(), got))
    })
    .unwrap();
    assert_eq!(got, (Some(TrapError::ResourceBusy), b"y".to_vec()));
}

/// Regression: the last bytes and the peer's FIN can come in one edge. The
/// short read takes the bytes; the read after it waits without trying, and
/// must still be resumed by the end of the stream the kernel already saw.
#[test]
fn end_of_stream_in_the_same_edge_as_the_last_bytes() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let closer = spawn(async move {
            // The reader waits first, so bytes and FIN arrive as one event.
            yield_now().await?;
            server.write_all(b"abc").await?;
            drop(server);
            Ok::<_, io::Error>(())
        })?;
        let mut buf = [0u8; 8];
        let n = within_limit(client.read(&mut buf)).await?;
        let end = within_limit(client.read(&mut buf)).await?;
        closer.join().await??;
        Ok::<_, io::Error>((buf[..n].to_vec(), end))
    })
    .unwrap();
    assert_eq!(got, (b"abc".to_vec(), 0));
}

/// A read that waits without trying is woken by the edge, but its task
/// drops it unread (another branch of a `select` won in the same poll): the
/// edge is spent and the bytes are still there, so the next read must try
/// before it waits, or it would wait forever.
#[test]
fn a_read_abandoned_after_its_edge_leaves_the_next_read_to_try() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        client.write_all(b"a").await?;
        let mut buf = [0u8; 16];
        let n = timeout_after(LIMIT, server.read(&mut buf)).await??;
        assert_eq!(&buf[..n], b"a", "a short read: the next read waits untried");
        let bell = Rc::new(Event::new());
        let ringer = {
            let bell = bell.clone();
            spawn(async move {
                yield_now().await?;
                // In one pass: bytes for the parked read, and the bell.
                client.write_all(b"b").await?;
                bell.set();
                Ok::<_, io::Error>(client)
            })?
        };
        let (mut read, mut rung) = (pin!(server.read(&mut buf)), pin!(bell.wait()));
        // Biased: the bell is looked at first, so the read that its edge
        // woke is dropped without being polled again.
        std::future::poll_fn(|cx| {
            if let Poll::Ready(done) = rung.as_mut().poll(cx) {
                return Poll::Ready(done.map_err(io::Error::from));
            }
            match read.as_mut().poll(cx) {
                Poll::Ready(Ok(_)) => Poll::Ready(Err(io::Error::other("the read won"))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        let _client = ringer.join().await??;
        let mut buf = [0u8; 16];
        let n = within_limit(server.read(&mut buf)).await?;
        Ok::<_, io::Error>(buf[..n].to_vec())
    })
    .unwrap();
    assert_eq!(got, b"b");
}

/// The skip itself: after a short read, the next read traps `ReadDrained`
/// without its `EAGAIN` syscall; after a read that filled its buffer, it
/// tries, meets `EAGAIN` and traps `ReadWait`.
#[test]
fn a_short_read_skips_the_eagain_read() {
    let (lines, fd) = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let fd = server.as_raw_fd();
        let server = Rc::new(server);
        let reader = {
            let server = server.clone();
            spawn(async move {
                let mut got = Vec::new();
                for size in [16, 1, 16] {
                    let mut buf = vec![0u8; size];
                    let n = server.read(&mut buf).await?;
                    got.extend_from_slice(&buf[..n]);
                }
                Ok::<_, io::Error>(got)
            })?
        };
        trace::start();
        yield_now().await?; // read 1 tries, and waits
        client.write_all(b"x").await?; // read 1: short, so read 2 waits untried
        yield_now().await?;
        yield_now().await?;
        client.write_all(b"y").await?; // read 2 fills its byte: read 3 tries, and waits
        yield_now().await?;
        yield_now().await?;
        client.write_all(b"z").await?;
        let got = timeout_after(LIMIT, reader.join()).await???;
        assert_eq!(got, b"xyz");
        Ok::<_, io::Error>((trace::stop(), fd))
    })
    .unwrap();
    let waits: Vec<String> = lines
        .iter()
        .filter(|l| l.contains(&format!("(fd {fd})")) && l.contains(" trap "))
        .map(|l| {
            l.split(" at ")
                .next()
                .unwrap()
                .split_once(" trap ")
                .unwrap()
                .1
                .to_string()
        })
        .collect();
    let expected = [
        format!("ReadWait(fd {fd})"),
        format!("ReadDrained(fd {fd})"),
        format!("ReadWait(fd {fd})"),
    ];
    assert_eq!(waits, expected);
}

/// A leaf that can still make progress completes normally, even in a
/// cancelled task: a read after a short read, refused its untried wait by the
/// cancellation, still tries and returns the bytes that came meanwhile; the
/// read after it, with nothing there, fails with `Cancelled`.
#[test]
fn a_cancelled_read_after_a_short_read_still_takes_the_bytes_there() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        client.write_all(b"a").await?;
        let reader = spawn(async move {
            let mut buf = [0u8; 16];
            let n = server.read(&mut buf).await?;
            assert_eq!(&buf[..n], b"a", "short: the next read may wait untried");
            let nap = trapline::sleep(LIMIT).await;
            let n = server.read(&mut buf).await?;
            let after = server
                .read(&mut buf)
                .await
                .map_err(|e| TrapError::from_io(&e).cloned());
            Ok::<_, io::Error>((nap, buf[..n].to_vec(), after))
        })?;
        yield_now().await?; // the reader takes "a" and sleeps
        client.write_all(b"b").await?;
        yield_now().await?;
        // Now the kernel has seen "b" arrive. Cancelling waits for the task
        // to end and says how it ended.
        yield_now().await?;
        let (nap, got, after) = timeout_after(LIMIT, reader.cancel()).await???;
        Ok::<_, io::Error>((nap, got, after))
    })
    .unwrap();
    assert_eq!(
        got,
        (
            Err(TrapError::Cancelled),
            b"b".to_vec(),
            Err(Some(TrapError::Cancelled))
        )
    );
}
