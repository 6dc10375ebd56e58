//! `copy_bidirectional`: the heart of a proxy — both directions of two TCP
//! connections at once, each half-closed on its own.
//!
//! Each direction is a plain loop: read from one side, write all of it to
//! the other. When a side says it has finished sending (end of stream), the
//! copy of that direction shuts the *write* direction of the other side
//! down, so the far end sees the same end of stream — while the opposite
//! direction carries on until it, too, ends. That is a half-close passing
//! through the proxy intact.
//!
//! Discussion: both loops run inside the caller's task, polled side by side
//! (no child task), so a cancel or a `timeout_after` limit reaches both at
//! once. If one direction fails (a reset), both connections are shut down
//! completely, which ends the other direction's wait too; the first error is
//! returned.

use std::future::{poll_fn, Future};
use std::io;
use std::net::Shutdown;
use std::pin::pin;
use std::task::Poll;

use super::{OwnedReadHalf, OwnedWriteHalf, TcpStream};

/// Copies `a` → `b` and `b` → `a` until both directions have ended; returns
/// the bytes copied each way, `(a to b, b to a)`.
///
/// A read of end of stream on one side shuts down writing on the other.
/// Reads and writes are `ReadWait`/`WriteWait` traps, so the whole copy is
/// cancellable and timeout-able.
///
/// # Examples
///
/// A proxy in front of an echo server:
///
/// ```
/// use trapline::net::{copy_bidirectional, TcpListener, TcpStream};
///
/// trapline::run(async {
///     let echo = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     let front = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     let (echo_addr, front_addr) = (echo.local_addr()?, front.local_addr()?);
///     trapline::spawn(async move {
///         let (s, _) = echo.accept().await?;
///         let mut buf = [0; 64];
///         loop {
///             match s.read(&mut buf).await? {
///                 0 => return Ok::<_, std::io::Error>(()),
///                 n => s.write_all(&buf[..n]).await?,
///             }
///         }
///     })?;
///     let proxy = trapline::spawn(async move {
///         let (inbound, _) = front.accept().await?;
///         let outbound = TcpStream::connect(echo_addr).await?;
///         copy_bidirectional(inbound, outbound).await
///     })?;
///     let client = TcpStream::connect(front_addr).await?;
///     client.write_all(b"through the proxy").await?;
///     client.shutdown(std::net::Shutdown::Write)?;
///     let mut back = [0; 17];
///     client.read_exact(&mut back).await?;
///     assert_eq!(&back, b"through the proxy");
///     assert_eq!(proxy.join().await??, (17, 17));
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn copy_bidirectional(a: TcpStream, b: TcpStream) -> io::Result<(u64, u64)> {
    let (a_read, a_write) = a.into_split();
    let (b_read, b_write) = b.into_split();
    let mut forward = pin!(copy_one(a_read, b_write));
    let mut backward = pin!(copy_one(b_read, a_write));
    let (mut there, mut back) = (None, None);
    poll_fn(|cx| {
        if there.is_none() {
            if let Poll::Ready(r) = forward.as_mut().poll(cx) {
                there = Some(r);
            }
        }
        if back.is_none() {
            if let Poll::Ready(r) = backward.as_mut().poll(cx) {
                back = Some(r);
            }
        }
        match (&there, &back) {
            (Some(_), Some(_)) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    })
    .await;
    match (there, back) {
        (Some(Ok(there)), Some(Ok(back))) => Ok((there, back)),
        (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
        _ => unreachable!("the loop above ends only when both directions have"),
    }
}

/// One direction: `from` → `to`, then a half-close of `to`.
async fn copy_one(from: OwnedReadHalf, to: OwnedWriteHalf) -> io::Result<u64> {
    let mut buf = vec![0; 16 * 1024];
    let mut total = 0;
    let ended = loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break Ok(total),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        if let Err(e) = to.write_all(&buf[..n]).await {
            break Err(e);
        }
        total += n as u64;
    };
    if ended.is_err() {
        // Unblock the other direction: both connections are done for.
        let _ = from.stream().shutdown(Shutdown::Both);
        let _ = to.stream().shutdown(Shutdown::Both);
    }
    // Dropping `to` shuts its write direction down: the half-close.
    drop(to);
    ended
}
