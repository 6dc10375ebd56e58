//! Poll-style reads and writes, for traits from outside trapline
//! (`futures-io`, hyper's runtime traits) that ask `poll_read(cx, buf)`
//! rather than `read(buf).await`.
//!
//! Such a call has nowhere to keep a leaf between polls, so the stream keeps
//! one for each direction (a [`PollSeats`]). The rule is the same as for
//! every leaf (contract 7): try the syscall first, trap only on
//! `WouldBlock`; the kernel's registration is edge-triggered, and only a
//! syscall that saw `WouldBlock` guarantees a fresh edge.
//!
//! Discussion: the park of a poll-style read belongs to the stream's read
//! leaf, so it lasts between polls and is replaced, not duplicated, when
//! the read is polled again; a successful syscall undoes it. An `async` read
//! waiting on the same stream at the same time is a second reader and gets
//! `ResourceBusy`, as two async reads would.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::Location;
use std::task::{Context, Poll};

use socket2::SockRef;
use trapline_traps::{Leaf, Trap};

use super::io::Wait;
use super::tcp_stream::MSG_NOSIGNAL;
use super::{TcpStream, UnixStream};

/// The two leaves a stream keeps for poll-style I/O, one per direction.
pub(crate) struct PollSeats {
    read: RefCell<Leaf>,
    write: RefCell<Leaf>,
}

impl PollSeats {
    #[track_caller]
    pub(crate) fn new() -> PollSeats {
        let at = Location::caller();
        PollSeats {
            read: RefCell::new(Leaf::at(at)),
            write: RefCell::new(Leaf::at(at)),
        }
    }
}

impl fmt::Debug for PollSeats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PollSeats")
    }
}

/// Runs `op`; on `WouldBlock`, traps through `leaf` and returns `Pending`.
fn poll_op<T>(
    leaf: &RefCell<Leaf>,
    fd: RawFd,
    wait: Wait,
    cx: &Context<'_>,
    mut op: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match op() {
            Ok(v) => {
                leaf.borrow_mut().done();
                return Poll::Ready(Ok(v));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let trap = match wait {
                    Wait::Read => Trap::ReadWait { fd },
                    Wait::Write => Trap::WriteWait { fd },
                };
                return match leaf.borrow_mut().trap(cx, trap) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e.into())),
                };
            }
            // A signal interrupted the syscall: nothing happened, try again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                leaf.borrow_mut().done();
                return Poll::Ready(Err(e));
            }
        }
    }
}

impl TcpStream {
    /// Reads into `buf` if anything is there; otherwise traps `ReadWait` and
    /// returns `Pending`. The poll-style twin of [`TcpStream::read`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"polled").await?;
    ///     let mut buf = [0; 6];
    ///     let n = poll_fn(|cx| server.poll_read(cx, &mut buf)).await?;
    ///     assert_eq!(&buf[..n], &b"polled"[..n]);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        poll_op(&self.seats.read, self.as_raw_fd(), Wait::Read, cx, || {
            (&self.socket).read(buf)
        })
    }

    /// Writes some of `buf` if there is room; otherwise traps `WriteWait`
    /// and returns `Pending`. The poll-style twin of [`TcpStream::write`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let n = poll_fn(|cx| client.poll_write(cx, b"abc")).await?;
    ///     assert_eq!(n, 3);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        poll_op(&self.seats.write, self.as_raw_fd(), Wait::Write, cx, || {
            SockRef::from(&self.socket).send_with_flags(buf, MSG_NOSIGNAL)
        })
    }

    /// Writes some of several buffers if there is room; otherwise traps
    /// `WriteWait` and returns `Pending`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::io::IoSlice;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let bufs = [IoSlice::new(b"a"), IoSlice::new(b"bc")];
    ///     assert_eq!(poll_fn(|cx| client.poll_write_vectored(cx, &bufs)).await?, 3);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_op(&self.seats.write, self.as_raw_fd(), Wait::Write, cx, || {
            SockRef::from(&self.socket).send_vectored_with_flags(bufs, MSG_NOSIGNAL)
        })
    }
}

impl UnixStream {
    /// Reads into `buf` if anything is there; otherwise traps `ReadWait` and
    /// returns `Pending`. The poll-style twin of [`UnixStream::read`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(b"x").await?;
    ///     let mut buf = [0; 1];
    ///     assert_eq!(poll_fn(|cx| b.poll_read(cx, &mut buf)).await?, 1);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        poll_op(&self.seats.read, self.as_raw_fd(), Wait::Read, cx, || {
            (&self.stream).read(buf)
        })
    }

    /// Writes some of `buf` if there is room; otherwise traps `WriteWait`
    /// and returns `Pending`. The poll-style twin of [`UnixStream::write`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     assert_eq!(poll_fn(|cx| a.poll_write(cx, b"xy")).await?, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        poll_op(&self.seats.write, self.as_raw_fd(), Wait::Write, cx, || {
            (&self.stream).write(buf)
        })
    }

    /// Writes some of several buffers if there is room; otherwise traps
    /// `WriteWait` and returns `Pending`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::io::IoSlice;
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let bufs = [IoSlice::new(b"x"), IoSlice::new(b"yz")];
    ///     assert_eq!(poll_fn(|cx| a.poll_write_vectored(cx, &bufs)).await?, 3);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_op(&self.seats.write, self.as_raw_fd(), Wait::Write, cx, || {
            (&self.stream).write_vectored(bufs)
        })
    }
}
