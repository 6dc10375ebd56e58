//! A connected Unix domain stream socket.
//!
//! The same shape as `TcpStream`: every method takes `&self`, every wait is
//! a `ReadWait` or `WriteWait` trap after the syscall said `WouldBlock`.
//!
//! Discussion: connecting to a Unix socket involves no handshake on the
//! wire: it succeeds at once, is refused, or — when the listener's backlog
//! is full — fails with `WouldBlock` (`EAGAIN`). Linux gives no readiness
//! event for "the backlog has room again", so that last case is returned to
//! the caller as an error rather than waited on.

use std::future::Future;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::panic::Location;
use std::path::Path;

use socket2::{SockAddr, SockRef, Type};

use super::io::{read_exact, write_all, Io, LeafIo, Wait};
use super::poll_io::PollSeats;
use super::require_kernel;
use super::tcp_stream::MSG_NOSIGNAL;
use super::unix_addr::{abstract_addr, path_addr, socket};

/// A Unix domain stream connection.
///
/// # Examples
///
/// ```
/// use trapline::net::UnixStream;
///
/// trapline::run(async {
///     let (a, b) = UnixStream::pair()?;
///     a.write_all(b"over the pair").await?;
///     let mut buf = [0; 13];
///     b.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"over the pair");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixStream {
    pub(super) stream: std::os::unix::net::UnixStream,
    /// The leaves of poll-style I/O (`poll_read`, `poll_write`).
    pub(super) seats: PollSeats,
    /// Not `Send`: the fd is registered with the kernel of this thread.
    _kernel: PhantomData<*const ()>,
}

impl UnixStream {
    /// Wraps an accepted, already non-blocking stream.
    pub(super) fn from_std_unchecked(stream: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream {
            stream,
            seats: PollSeats::new(),
            _kernel: PhantomData,
        }
    }

    /// Connects to the socket file at `path`.
    ///
    /// `NotFound` if there is no such file, `ConnectionRefused` if nobody
    /// listens there (a stale file), `WouldBlock` (with a message that says
    /// so) if the listener's backlog is full: a Unix connect does not wait
    /// for room, so a caller that wants to wait retries after a sleep.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{UnixListener, UnixStream};
    ///
    /// let path = std::env::temp_dir().join(format!("trapline-doc-connect-{}.sock", std::process::id()));
    /// trapline::run(async {
    ///     let listener = UnixListener::bind_replacing_stale(&path)?;
    ///     let client = UnixStream::connect(&path).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
    ///     drop((client, server, listener));
    ///     std::fs::remove_file(&path)
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(path: impl AsRef<Path>) -> impl Future<Output = io::Result<UnixStream>> {
        let addr = path_addr(path.as_ref());
        async move { UnixStream::connect_addr(&addr?) }
    }

    /// Connects to the abstract name `name` (Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{UnixListener, UnixStream};
    ///
    /// trapline::run(async {
    ///     let err = UnixStream::connect_abstract(b"trapline-doc-nobody").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    ///     let _listener = UnixListener::bind_abstract(b"trapline-doc-somebody")?;
    ///     UnixStream::connect_abstract(b"trapline-doc-somebody").await?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_abstract(name: &[u8]) -> impl Future<Output = io::Result<UnixStream>> {
        let addr = abstract_addr(name);
        async move { UnixStream::connect_addr(&addr?) }
    }

    fn connect_addr(addr: &SockAddr) -> io::Result<UnixStream> {
        require_kernel()?;
        let socket = socket(Type::STREAM)?;
        match socket.connect(addr) {
            Ok(()) => Ok(UnixStream::from_std_unchecked(socket.into())),
            // A Unix connect never waits for a handshake: `EAGAIN` means the
            // listener's backlog is full, which deserves to be said plainly.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the listener's backlog is full (it is not accepting fast enough); try again later",
            )),
            Err(e) => Err(e),
        }
    }

    /// A pair of connected streams (`socketpair(2)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     drop(a);
    ///     assert_eq!(b.read(&mut [0; 4]).await?, 0, "end of stream");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        require_kernel()?;
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((
            UnixStream::from_std_unchecked(a),
            UnixStream::from_std_unchecked(b),
        ))
    }

    /// Reads what is there into `buf`, waiting if nothing is; 0 at end of stream.
    ///
    /// A `ReadWait` trap: cancellable, timeout-able.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(b"abc").await?;
    ///     let mut buf = [0; 8];
    ///     let n = b.read(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"abc");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn read<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.read_at(buf, Location::caller())
    }

    /// Writes some of `buf`, waiting if the buffer is full; returns how many bytes.
    ///
    /// A `WriteWait` trap when it waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     assert_eq!(a.write(b"abc").await?, 3);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn write<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.write_at(buf, Location::caller())
    }

    /// Writes all of `buf`.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let reader = trapline::spawn(async move {
    ///         let mut got = vec![0; 1 << 20];
    ///         b.read_exact(&mut got).await.map(|()| got)
    ///     })?;
    ///     a.write_all(&vec![3; 1 << 20]).await?;
    ///     assert_eq!(reader.join().await??, vec![3; 1 << 20]);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn write_all<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        write_all(self, buf, Location::caller())
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the stream ends first.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(b"ab").await?;
    ///     drop(a);
    ///     let err = b.read_exact(&mut [0; 3]).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn read_exact<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<()>> + 'a {
        read_exact(self, buf, Location::caller())
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.shutdown(Shutdown::Write)?;
    ///     assert_eq!(b.read(&mut [0; 1]).await?, 0);
    ///     b.write_all(b"still open this way").await?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream.shutdown(how)
    }

    /// This end's address (usually unnamed for a connecting side).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     assert!(a.local_addr()?.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// The peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     assert!(a.peer_addr()?.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }
}

impl LeafIo for UnixStream {
    fn read_at<'a>(
        &'a self,
        buf: &'a mut [u8],
        location: &'static Location<'static>,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        // Always tries first: a Unix stream's read also stops short at
        // passed fds or another writer's credentials with bytes still queued,
        // so a short read does not say the queue is empty (see `Drained`).
        Io::new(self.as_raw_fd(), Wait::Read, location, move || {
            self.seats.before_wait(Wait::Read, (&self.stream).read(buf))
        })
    }

    fn write_at<'a>(
        &'a self,
        buf: &'a [u8],
        location: &'static Location<'static>,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::new(self.as_raw_fd(), Wait::Write, location, move || {
            // `send(2)` with `MSG_NOSIGNAL`: a closed peer is `BrokenPipe`,
            // not a `SIGPIPE` that kills the process.
            let sent = SockRef::from(&self.stream).send_with_flags(buf, MSG_NOSIGNAL);
            self.seats.before_wait(Wait::Write, sent)
        })
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl Drop for UnixStream {
    fn drop(&mut self) {
        // Forget the fd before the socket closes it; no kernel, nothing to forget.
        let _ = trapline_traps::io_release(self.stream.as_raw_fd());
    }
}
