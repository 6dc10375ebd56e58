//! Connecting a TCP stream: to an address or a name, with or without a limit.
//!
//! A non-blocking `connect(2)` returns at once with `EINPROGRESS`; the
//! handshake ends when the socket becomes writable, and `SO_ERROR` says how
//! it ended. So a connect is one `WriteWait` trap. A name is looked up
//! first (see `resolve`), and each address it gives is tried in turn, the
//! way `std::net::TcpStream::connect` does; an interrupt stops the trying.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::panic::Location;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use trapline_traps::TrapError;

use super::io::{Io, Wait};
use super::require_kernel;
use super::resolve::{lookup, ToAddrs};
use super::TcpStream;

/// `connect(2)` on a non-blocking socket started, and has not finished.
const EINPROGRESS: i32 = 115;

impl TcpStream {
    /// Connects to `addr`: a [`SocketAddr`], or a name such as
    /// `"localhost:7000"` (see [`ToAddrs`]), trying each address the name
    /// resolves to in turn.
    ///
    /// A `WriteWait` trap while the handshake runs, and a `FutureWait` while
    /// a name is looked up on a blocking worker: both cancellable,
    /// timeout-able. A refused connection fails with `ConnectionRefused`;
    /// with several addresses, the last address's error is returned, but an
    /// interrupt (a cancel, a timeout) ends the attempt at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     let stream = TcpStream::connect(addr).await?;
    ///     assert_eq!(stream.peer_addr()?, addr);
    ///     let by_name = TcpStream::connect(format!("localhost:{}", addr.port())).await?;
    ///     assert_eq!(by_name.peer_addr()?, addr);
    ///     drop(listener); // nobody listens there any more
    ///     let refused = TcpStream::connect(addr).await.unwrap_err();
    ///     assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn connect<A: ToAddrs>(addr: A) -> impl Future<Output = io::Result<TcpStream>> {
        let location = Location::caller();
        let target = addr.to_addrs();
        async move {
            require_kernel()?;
            let addrs = lookup(target?, location).await?;
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect_one(addr, location).await {
                    Ok(stream) => return Ok(stream),
                    // Cancelled or timed out: no point trying the next address.
                    Err(e) if TrapError::from_io(&e).is_some() => return Err(e),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
            }))
        }
    }

    async fn connect_one(
        addr: SocketAddr,
        location: &'static Location<'static>,
    ) -> io::Result<TcpStream> {
        let ty = Type::STREAM.nonblocking().cloexec();
        let socket = Socket::new(Domain::for_address(addr), ty, Some(Protocol::TCP))?;
        let started = socket.connect(&addr.into());
        let stream = TcpStream::from_socket(socket);
        match started {
            Ok(()) => return Ok(stream),
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // Writable means the handshake ended; SO_ERROR says how.
        Io::new(stream.as_raw_fd(), Wait::Write, location, || {
            if let Some(err) = stream.socket.take_error()? {
                return Err(err);
            }
            match stream.socket.peer_addr() {
                Ok(_) => Ok(()),
                // Still in progress.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(stream)
    }

    /// Connects to `addr`, giving up after `limit` with `TimedOut`
    /// (`io::ErrorKind::TimedOut`); the lookup of a name counts against the
    /// limit too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5)).await?;
    ///     assert_eq!(stream.peer_addr()?, addr);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn connect_timeout<A: ToAddrs>(
        addr: A,
        limit: Duration,
    ) -> impl Future<Output = io::Result<TcpStream>> {
        let bounded = crate::timeout_after(limit, TcpStream::connect(addr));
        async move {
            match bounded.await {
                Ok(done) => done,
                Err(e) => Err(timed_out(e)),
            }
        }
    }
}

/// The limit of [`TcpStream::connect_timeout`] passed: a plain
/// `io::ErrorKind::TimedOut`, as `std::net::TcpStream::connect_timeout` gives.
/// Any other interrupt (a cancel, an enclosing limit) passes through as is.
fn timed_out(err: TrapError) -> io::Error {
    match err {
        TrapError::TimedOut(_) => io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        other => other.into(),
    }
}
