//! A TCP listening socket.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::Location;

use std::marker::PhantomData;

use socket2::Socket;

use super::io::{Io, Wait};
use super::{inet, TcpStream};

/// A TCP socket listening for connections.
///
/// # Examples
///
/// ```no_run
/// use trapline::net::TcpListener;
///
/// trapline::run(async {
///     let listener = TcpListener::bind("127.0.0.1:7000".parse().unwrap())?;
///     loop {
///         let (stream, peer) = listener.accept().await?;
///         println!("{peer} connected");
///         drop(stream);
///     }
///     # #[allow(unreachable_code)]
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpListener {
    socket: Socket,
    /// Set `TCP_NODELAY` on every accepted stream.
    nodelay: bool,
    /// Not `Send`: the fd is registered with the kernel of this thread.
    _kernel: PhantomData<*const ()>,
}

/// A non-blocking socket bound to `addr` with `SO_REUSEADDR`, listening.
/// Needs no kernel: the monitor binds before it builds the kernel it
/// watches, so that one that cannot listen costs that kernel nothing.
pub(crate) fn listening(addr: SocketAddr, backlog: i32) -> io::Result<Socket> {
    TcpListener::builder(addr).backlog(backlog).socket()
}

impl TcpListener {
    /// The backlog [`TcpListener::bind`] uses.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::TcpListener;
    ///
    /// assert_eq!(TcpListener::DEFAULT_BACKLOG, 1024);
    /// ```
    pub const DEFAULT_BACKLOG: i32 = 1024;

    /// Binds to `addr` with `SO_REUSEADDR` and a backlog of
    /// [`TcpListener::DEFAULT_BACKLOG`]. Port 0 picks a free port.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::TcpListener;
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     assert_ne!(listener.local_addr()?.port(), 0);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(addr, TcpListener::DEFAULT_BACKLOG)
    }

    /// Binds to `addr` with `SO_REUSEADDR` and the given backlog.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::TcpListener;
    /// use trapline::TrapError;
    ///
    /// let addr = "127.0.0.1:0".parse().unwrap();
    /// // Outside a kernel there is no one to watch the fd.
    /// let err = TcpListener::bind_with_backlog(addr, 16).unwrap_err();
    /// assert_eq!(TrapError::from_io(&err), Some(&TrapError::NoKernel));
    /// trapline::run(async {
    ///     let listener = TcpListener::bind_with_backlog(addr, 16)?;
    ///     assert!(listener.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_with_backlog(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
        TcpListener::builder(addr).backlog(backlog).bind()
    }

    /// Wraps a socket that [`listening`] made; called inside the kernel
    /// that will watch it (the fd is registered at its first wait).
    pub(crate) fn from_listening(socket: Socket) -> TcpListener {
        TcpListener::from_parts(socket, false)
    }

    /// A listener made by [`super::ListenerBuilder`] or [`listening`]:
    /// `socket` bound and listening.
    pub(super) fn from_parts(socket: Socket, nodelay: bool) -> TcpListener {
        TcpListener {
            socket,
            nodelay,
            _kernel: PhantomData,
        }
    }

    /// Waits for a connection; returns the connected stream and the peer's address.
    ///
    /// A `ReadWait` trap on the listening socket: cancellable, timeout-able.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, peer) = listener.accept().await?;
    ///     assert_eq!(peer, client.local_addr()?);
    ///     assert_eq!(server.peer_addr()?, peer);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn accept(&self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + '_ {
        let location = Location::caller();
        Io::new(self.as_raw_fd(), Wait::Read, location, move || {
            let (socket, peer) = self.socket.accept()?;
            socket.set_nonblocking(true)?;
            if self.nodelay {
                socket.set_tcp_nodelay(true)?;
            }
            Ok((TcpStream::from_socket(socket), inet(peer)?))
        })
    }

    /// The address the listener is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::TcpListener;
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("[::1]:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     assert!(addr.is_ipv6() && addr.ip().is_loopback());
    ///     assert_ne!(addr.port(), 0, "port 0 became a free port");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(self.socket.local_addr()?)
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        // Forget the fd before the socket closes it; no kernel, nothing to forget.
        let _ = trapline_traps::io_release(self.socket.as_raw_fd());
    }
}
