//! Poll-style reads and writes, for traits from outside trapline
//! (`futures-io`, hyper's runtime traits) that ask `poll_read(cx, buf)`
//! rather than `read(buf).await`.
//!
//! Such a call has nowhere to keep a leaf between polls, so the stream keeps
//! a seat for each direction (a [`PollSeats`]). The rule is the same as for
//! every leaf (contract 7): try the syscall first, trap only on
//! `WouldBlock`; the kernel's registration is edge-triggered, and only a
//! syscall that saw `WouldBlock` guarantees a fresh edge.
//!
//! Discussion: a seat keeps one leaf *per task*, made at the first poll
//! that has to wait and dropped when that task's poll completes. Its park
//! lasts between polls and is replaced, not duplicated, when the same task
//! polls again; a successful syscall undoes it. A second task polling the
//! same direction posts its own ticket, so the kernel sees two waiters and
//! answers the second with `ResourceBusy` (contract 7), as it would two async
//! reads; a shared leaf would instead have moved the first task's park to
//! the second and left the first asleep for good.
//!
//! A poll that returned `Pending` and was then abandoned (its caller dropped
//! by a `select`) leaves its task's park in the seat. The stream's own async
//! reads and writes release it before they trap, so the same task can go on
//! with `read(..).await`; a *different* task's abandoned park stays until
//! that task polls again, ends (the kernel drops its parks) or the stream is
//! dropped, and until then any other waiter in that direction is
//! `ResourceBusy`.
//!
//! The poll methods are `#[track_caller]` and a leaf is made at the poll
//! that first waits, so a park reports the line that called `poll_read` or
//! `poll_write` (contract 13). Through the `futures-io` traits that is the
//! line of whatever called the trait method, often a combinator.

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::io::{self, IoSlice, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::Location;
use std::task::{Context, Poll};

use socket2::SockRef;
use trapline_traps::{running, Leaf, TaskId, Trap};

use super::io::Wait;
use super::tcp_stream::MSG_NOSIGNAL;
use super::{TcpStream, UnixStream};

/// The seats a stream keeps for poll-style I/O, one per direction, made at
/// the first poll-style call that has to wait.
///
/// Discussion: why boxed, and only then. Two seats are 64 bytes, and a
/// stream served with `read(..).await` never uses them; an idle connection
/// carries its stream for as long as it lives, so the stream keeps one
/// pointer (8 bytes, null until made) and the seats are allocated the first
/// time a poll-style read or write parks. Once made they stay until the
/// stream is dropped. A stream without them has no poll-style park to
/// release or to ask about.
#[derive(Default)]
pub(crate) struct PollSeats {
    made: OnceCell<Box<Seats>>,
}

/// The two seats, once made.
#[derive(Default)]
struct Seats {
    read: Seat,
    write: Seat,
}

impl Seats {
    fn seat(&self, wait: Wait) -> &Seat {
        match wait {
            Wait::Read => &self.read,
            Wait::Write => &self.write,
        }
    }
}

impl PollSeats {
    pub(crate) fn new() -> PollSeats {
        PollSeats::default()
    }

    /// The seat of `wait`'s direction, if the seats were made.
    fn seat(&self, wait: Wait) -> Option<&Seat> {
        self.made.get().map(|seats| seats.seat(wait))
    }

    /// Whether no task has a poll-style read parked on the stream.
    pub(crate) fn read_is_empty(&self) -> bool {
        self.seat(Wait::Read).is_none_or(Seat::is_empty)
    }

    /// What an async leaf on the stream calls with its syscall's result:
    /// see [`Seat::before_wait`].
    pub(crate) fn before_wait<T>(&self, wait: Wait, result: io::Result<T>) -> io::Result<T> {
        match self.seat(wait) {
            Some(seat) => seat.before_wait(result),
            None => result,
        }
    }

    /// Runs `op`; on `WouldBlock`, traps through the running task's leaf
    /// in `wait`'s direction (made at `location` if it has none) and
    /// returns `Pending`, keeping the leaf in the seat (the seats are made
    /// then if they were not).
    fn poll_op<T>(
        &self,
        fd: RawFd,
        wait: Wait,
        cx: &Context<'_>,
        location: &'static Location<'static>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let task = running();
        // Out of the seat while it is used: dropped on completion, put back
        // only if it parked.
        let mut leaf = task
            .zip(self.seat(wait))
            .and_then(|(t, seat)| seat.take(t))
            .unwrap_or_else(|| Leaf::at(location));
        loop {
            match op() {
                Ok(v) => return Poll::Ready(Ok(v)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let trap = match wait {
                        Wait::Read => Trap::ReadWait { fd },
                        Wait::Write => Trap::WriteWait { fd },
                    };
                    return match (leaf.trap(cx, trap), task) {
                        (Ok(()), Some(task)) => {
                            let seats = self.made.get_or_init(Box::default);
                            seats.seat(wait).leaves.borrow_mut().push((task, leaf));
                            Poll::Pending
                        }
                        // Posted with no running task: cannot happen (the
                        // post fails first); never keep a leaf we cannot key.
                        (Ok(()), None) => Poll::Ready(Err(io::Error::other(
                            "a poll-style leaf was polled outside a task",
                        ))),
                        (Err(e), _) => Poll::Ready(Err(e.into())),
                    };
                }
                // A signal interrupted the syscall: nothing happened, try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl fmt::Debug for PollSeats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PollSeats")
    }
}

/// One direction's leaves for poll-style I/O, one per waiting task.
#[derive(Default)]
struct Seat {
    leaves: RefCell<Vec<(TaskId, Leaf)>>,
}

impl Seat {
    /// Whether no task has a poll-style leaf parked here.
    fn is_empty(&self) -> bool {
        self.leaves.borrow().is_empty()
    }

    /// Takes the running task's leaf out of the seat, if it has one.
    fn take(&self, task: TaskId) -> Option<Leaf> {
        let mut leaves = self.leaves.borrow_mut();
        let at = leaves.iter().position(|(t, _)| *t == task)?;
        Some(leaves.swap_remove(at).1)
    }

    /// Releases the running task's park in this seat, if it left one (a
    /// poll that returned `Pending` and was abandoned). The leaf is dropped
    /// outside the borrow: undoing its park calls into the kernel.
    fn release_mine(&self) {
        if let Some(task) = running() {
            drop(self.take(task));
        }
    }

    /// What an async leaf on this stream calls with its syscall's result:
    /// on `WouldBlock` (it is about to trap) the running task's poll-style
    /// park in the same direction is released first, so the task does not
    /// find itself `ResourceBusy`.
    fn before_wait<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.release_mine();
        }
        result
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
    #[track_caller]
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        // Poll-style reads always try first; the stream's next `read` too.
        self.drained.forget();
        self.seats
            .poll_op(self.as_raw_fd(), Wait::Read, cx, Location::caller(), || {
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
    #[track_caller]
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.seats.poll_op(
            self.as_raw_fd(),
            Wait::Write,
            cx,
            Location::caller(),
            || SockRef::from(&self.socket).send_with_flags(buf, MSG_NOSIGNAL),
        )
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
    #[track_caller]
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.seats.poll_op(
            self.as_raw_fd(),
            Wait::Write,
            cx,
            Location::caller(),
            || SockRef::from(&self.socket).send_vectored_with_flags(bufs, MSG_NOSIGNAL),
        )
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
    #[track_caller]
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.seats
            .poll_op(self.as_raw_fd(), Wait::Read, cx, Location::caller(), || {
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
    #[track_caller]
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.seats.poll_op(
            self.as_raw_fd(),
            Wait::Write,
            cx,
            Location::caller(),
            || SockRef::from(&self.stream).send_with_flags(buf, MSG_NOSIGNAL),
        )
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
    #[track_caller]
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.seats.poll_op(
            self.as_raw_fd(),
            Wait::Write,
            cx,
            Location::caller(),
            || SockRef::from(&self.stream).send_vectored_with_flags(bufs, MSG_NOSIGNAL),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;

    use super::*;
    use crate::net::TcpListener;

    /// A stream keeps one pointer for its poll-style seats, not the two
    /// seats themselves: a TCP stream is its fd, that pointer and its
    /// `Drained` note; a Unix stream its fd and the pointer.
    #[test]
    fn a_stream_keeps_one_pointer_for_its_seats() {
        assert_eq!(std::mem::size_of::<PollSeats>(), 8);
        assert_eq!(std::mem::size_of::<Seats>(), 64);
        assert_eq!(std::mem::size_of::<TcpStream>(), 24);
        assert_eq!(std::mem::size_of::<UnixStream>(), 16);
    }

    /// Async reads and writes, waiting or not, make no seats; a poll-style
    /// read that does not wait makes none either; the first one that parks
    /// makes them, and its park sits in the read seat.
    #[test]
    fn the_seats_are_made_by_the_first_poll_style_park() {
        crate::run(async {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
            let client = TcpStream::connect(listener.local_addr()?).await?;
            let (server, _) = listener.accept().await?;
            let mut buf = [0; 4];
            client.write_all(b"ab").await?;
            assert_eq!(server.read(&mut buf).await?, 2);
            let reader = crate::spawn(async move {
                let mut buf = [0; 4];
                let n = server.read(&mut buf).await?; // waits
                Ok::<_, io::Error>((server, n))
            })?;
            crate::yield_now().await?;
            client.write_all(b"c").await?;
            let (server, n) = reader.join().await??;
            assert_eq!(n, 1);
            assert!(
                server.seats.made.get().is_none(),
                "async reads make no seats"
            );
            client.write_all(b"d").await?;
            let n = poll_fn(|cx| server.poll_read(cx, &mut buf)).await?;
            assert_eq!(n, 1);
            assert!(
                server.seats.made.get().is_none(),
                "a read that did not wait"
            );
            let parked =
                poll_fn(|cx| Poll::Ready(server.poll_read(cx, &mut buf).is_pending())).await;
            assert!(parked);
            assert!(
                !server.seats.read_is_empty(),
                "the park is in the read seat"
            );
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    }
}
