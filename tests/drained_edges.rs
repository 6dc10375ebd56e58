//! Where a read that waits without trying (`ReadDrained`, after a short
//! read) could miss bytes already in the socket, and what stops it. Each
//! test puts bytes in the socket while that read would wait, and asserts
//! that the read gets them (or, for the seat, that it waits like any read).
//!
//! - A short read does not always mean an empty receive queue. Linux stops
//!   a TCP read at the urgent mark (the kernel registers `EPOLLPRI` and keeps
//!   it, so `ReadDrained` is resumed at once from then on), and a Unix stream
//!   read at an out-of-band byte, after a message that carried fds, and
//!   (with `SO_PASSCRED`) where the writer changes, with bytes still queued
//!   behind them (Unix stream reads always try first).
//! - The read edge that came after the short read can be spent on a
//!   *different* read leaf of the same stream, one that sat in the reader
//!   seat (a second read future, a poll-style read left pending) and is not
//!   polled again. A short read made while another read leaf of the stream
//!   waits sets no hint, so the next read tries; and it does not meet
//!   `ResourceBusy` beside its own task's abandoned poll-style read.
//!
//! The cases that held from the start (a first registration after the short
//! read, a hint carried into a later run of a kernel) are kept as guards.
//!
//! A lost wake-up is bounded by [`within_limit`], so it fails the test
//! instead of hanging it.

mod util;

use std::fs::File;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::task::Poll;

use socket2::{MsgHdr, SockRef};
use trapline::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use trapline::{spawn, yield_now, Kernel};
use util::{run_clean, tcp_pair, within_limit};

/// Polls `future` once, in the running task, and gives back what it said.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// A loopback TCP connection whose peer is a plain (blocking) std socket,
/// so the test can send what trapline's streams do not (urgent data).
async fn tcp_with_std_peer() -> io::Result<(std::net::TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    // The handshake completes in the listener's backlog: this does not block.
    let peer = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept().await?;
    Ok((peer, server))
}

/// A Unix stream connection whose peer is a plain (blocking) std socket,
/// for out-of-band bytes and fd passing.
async fn unix_with_std_peer(
    name: &str,
) -> io::Result<(std::os::unix::net::UnixStream, UnixStream)> {
    let name = format!("trapline-drained-edges-{name}-{}", std::process::id());
    let listener = UnixListener::bind_abstract(name.as_bytes())?;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let peer = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    let (server, _) = listener.accept().await?;
    Ok((peer, server))
}

/// The reader of the Linux-side cases, spawned: a first read that waits
/// (so the fd is registered and the edge for everything the peer sends
/// wakes it), then a second read, bounded; both reads' bytes.
macro_rules! two_reads {
    ($stream:expr) => {{
        let stream = $stream;
        spawn(async move {
            let mut buf = [0u8; 64];
            let n = stream.read(&mut buf).await?;
            let first = buf[..n].to_vec();
            let n = within_limit(stream.read(&mut buf)).await?;
            Ok::<_, io::Error>((first, buf[..n].to_vec()))
        })?
    }};
}

/// TCP urgent data: the peer sends "xy" with the urgent byte "!" (MSG_OOB),
/// then "after", all before the reader wakes. Linux's `tcp_recvmsg` stops at
/// the urgent mark once it has copied anything, so the first read returns
/// "xy" (short) with "after" still queued; the second read skips the urgent
/// byte (not inline) and returns "after". No edge comes for "after": it
/// arrived before the edge that woke the first read.
#[test]
fn tcp_urgent_data_ends_a_read_short_with_bytes_behind_it() {
    let got = run_clean(async {
        let (mut peer, server) = tcp_with_std_peer().await?;
        let reader = two_reads!(server);
        yield_now().await?; // the reader tries, and waits
        SockRef::from(&peer).send_out_of_band(b"xy!")?;
        peer.write_all(b"after")?;
        reader.join().await?
    })
    .unwrap();
    assert_eq!(got, (b"xy".to_vec(), b"after".to_vec()));
}

/// The same with a Unix stream's out-of-band byte (`MSG_OOB`, Linux 5.15
/// and later): `unix_stream_read_generic` stops before the out-of-band skb
/// once it has copied anything.
#[test]
fn unix_out_of_band_byte_ends_a_read_short_with_bytes_behind_it() {
    let got = run_clean(async {
        let (mut peer, server) = unix_with_std_peer("oob").await?;
        let reader = two_reads!(server);
        yield_now().await?;
        SockRef::from(&peer).send_out_of_band(b"xy!")?;
        peer.write_all(b"after")?;
        reader.join().await?
    })
    .unwrap();
    assert_eq!(got, (b"xy".to_vec(), b"after".to_vec()));
}

/// `SCM_RIGHTS` control bytes carrying one fd, laid out by hand (a
/// `cmsghdr`, then the fd, padded to the header's alignment).
fn rights(fd: i32) -> Vec<u8> {
    let header = std::mem::size_of::<libc::cmsghdr>();
    let align = std::mem::align_of::<libc::cmsghdr>();
    let data = std::mem::size_of::<i32>();
    let space = header + data.div_ceil(align) * align;
    let mut bytes = Vec::with_capacity(space);
    bytes.extend_from_slice(&(header + data).to_ne_bytes()); // cmsg_len: size_t
    bytes.extend_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
    bytes.extend_from_slice(&libc::SCM_RIGHTS.to_ne_bytes());
    assert_eq!(bytes.len(), header, "cmsghdr is size_t, int, int");
    bytes.extend_from_slice(&fd.to_ne_bytes());
    bytes.resize(space, 0);
    bytes
}

/// A Unix stream message that carries fds ends a read: after copying it,
/// `unix_stream_read_generic` breaks out (`if (scm.fp) break`), though the
/// caller passed no room for the fds (they are closed). The peer sends "a"
/// with an fd, then "after": the first read returns "a" (short) with
/// "after" still queued.
#[test]
fn unix_passed_fds_end_a_read_short_with_bytes_behind_it() {
    let got = run_clean(async {
        let (mut peer, server) = unix_with_std_peer("fds").await?;
        let reader = two_reads!(server);
        yield_now().await?;
        let passed = File::open("/dev/null")?;
        let control = rights(passed.as_raw_fd());
        let bufs = [IoSlice::new(b"a")];
        let msg = MsgHdr::new().with_buffers(&bufs).with_control(&control);
        assert_eq!(SockRef::from(&peer).sendmsg(&msg, 0)?, 1);
        peer.write_all(b"after")?;
        reader.join().await?
    })
    .unwrap();
    assert_eq!(got, (b"a".to_vec(), b"after".to_vec()));
}

/// A Unix stream read stops where the writer changes, when the reader asked
/// for credentials (`SO_PASSCRED`): "never glue messages from different
/// writers" (`unix_stream_read_generic`). This process sends "a", a child
/// process sends "after" on a copy of the same socket: the first read
/// returns "a" (short) with "after" still queued.
#[test]
fn unix_another_writers_bytes_end_a_read_short_with_bytes_behind_it() {
    let got = run_clean(async {
        let (mut peer, server) = unix_with_std_peer("creds").await?;
        // SAFETY: `server` owns the fd and outlives this borrow (used on the
        // next line only).
        let fd = unsafe { BorrowedFd::borrow_raw(server.as_raw_fd()) };
        SockRef::from(&fd).set_passcred(true)?;
        let reader = two_reads!(server);
        yield_now().await?;
        peer.write_all(b"a")?;
        let child = Command::new("sh")
            .args(["-c", "printf after"])
            .stdout(Stdio::from(OwnedFd::from(peer.try_clone()?)))
            .status()?;
        assert!(child.success());
        reader.join().await?
    })
    .unwrap();
    assert_eq!(got, (b"a".to_vec(), b"after".to_vec()));
}

/// Two reads of one stream alive in one task: the first tries, finds
/// nothing and sits in the reader seat; the second finds "a" at its first
/// try (short: the hint is set). "b" arrives; its edge fires the first read,
/// which is dropped unpolled (it lost a race the program decided). The next
/// read holds the hint, traps `ReadDrained`, finds no kept edge (the edge
/// found a reader seated), and must still get "b".
#[test]
fn an_edge_spent_on_another_parked_read_is_not_lost() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let mut early = [0u8; 16];
        let mut parked = Box::pin(server.read(&mut early));
        assert!(poll_once(&mut parked).await.is_pending());
        yield_now().await?; // it sits in the reader seat
        client.write_all(b"a").await?;
        let mut buf = [0u8; 16];
        let n = server.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"a", "a short read: the next read waits untried");
        client.write_all(b"b").await?;
        yield_now().await?; // the edge for "b" fires the parked read
        drop(parked);
        let n = within_limit(server.read(&mut buf)).await?;
        Ok::<_, io::Error>(buf[..n].to_vec())
    })
    .unwrap();
    assert_eq!(got, b"b");
}

/// The same with the realistic leftover: a poll-style read (what
/// `futures-io` and hyper call) that returned `Pending` and was abandoned
/// keeps its park in the seat (documented in `poll_io.rs`). The task goes
/// on with async reads: one short read of "a", then "b" arrives and its
/// edge fires the abandoned park; the next read waits untried and must
/// still get "b".
#[test]
fn an_edge_spent_on_an_abandoned_poll_read_is_not_lost() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let mut buf = [0u8; 16];
        let pending = poll_fn(|cx| Poll::Ready(server.poll_read(cx, &mut buf).is_pending())).await;
        assert!(pending, "nothing sent yet: the poll-style read waits");
        yield_now().await?; // its park sits in the reader seat, abandoned
        client.write_all(b"a").await?;
        let n = server.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"a");
        client.write_all(b"b").await?;
        yield_now().await?; // the edge for "b" fires the abandoned park
        let n = within_limit(server.read(&mut buf)).await?;
        Ok::<_, io::Error>(buf[..n].to_vec())
    })
    .unwrap();
    assert_eq!(got, b"b");
}

/// "The stream's own async reads release [an abandoned poll-style park]
/// before they trap, so the same task can go on with `read(..).await`"
/// (`poll_io.rs`): they release it when their syscall says `WouldBlock`.
/// A read that waits untried makes no syscall, so the park is still in the
/// seat and the task's own read is refused `ResourceBusy`.
#[test]
fn an_abandoned_poll_read_does_not_make_a_drained_read_busy() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        let mut buf = [0u8; 16];
        let pending = poll_fn(|cx| Poll::Ready(server.poll_read(cx, &mut buf).is_pending())).await;
        assert!(pending);
        yield_now().await?;
        client.write_all(b"a").await?;
        let n = server.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"a");
        let writer = spawn(async move {
            yield_now().await?;
            client.write_all(b"b").await?;
            Ok::<_, io::Error>(client)
        })?;
        let read = within_limit(server.read(&mut buf)).await;
        let _client = writer.join().await??;
        let n = read?;
        Ok::<_, io::Error>(buf[..n].to_vec())
    })
    .unwrap();
    assert_eq!(got, b"b");
}

/// Holds: the short read happens before the stream was ever registered
/// (nothing waited on it), and "b" arrives before the next read. The
/// `ReadDrained` registers the fd, and registering an fd that is already
/// readable reports it: the read gets "b".
#[test]
fn a_first_registration_after_a_short_read_reports_queued_bytes() {
    let got = run_clean(async {
        let (client, server) = tcp_pair().await?;
        client.write_all(b"a").await?;
        let mut buf = [0u8; 16];
        let n = server.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"a");
        client.write_all(b"b").await?;
        let n = within_limit(server.read(&mut buf)).await?;
        Ok::<_, io::Error>(buf[..n].to_vec())
    })
    .unwrap();
    assert_eq!(got, b"b");
}

/// Holds: a short read in one run of a kernel, "b" sent between runs (the
/// run's end deregisters every fd), and the next read in a later run waits
/// untried: it registers again and hears "b".
#[test]
fn a_hint_carried_into_a_later_run_still_hears_queued_bytes() {
    let mut kernel = Kernel::builder().build().expect("a kernel");
    let (mut peer, server) = kernel
        .run(async {
            let (mut peer, server) = tcp_with_std_peer().await?;
            let server = Rc::new(server);
            let reader = util::read_once(&server)?;
            yield_now().await?; // registered, waiting
            peer.write_all(b"a")?;
            assert_eq!(reader.join().await??, b"a", "short: the hint is set");
            Ok::<_, io::Error>((peer, server))
        })
        .expect("the kernel ran")
        .unwrap();
    peer.write_all(b"b").unwrap();
    let got = kernel
        .run(async move {
            let mut buf = [0u8; 16];
            let n = within_limit(server.read(&mut buf)).await?;
            Ok::<_, io::Error>(buf[..n].to_vec())
        })
        .expect("the kernel ran")
        .unwrap();
    assert_eq!(got, b"b");
}
