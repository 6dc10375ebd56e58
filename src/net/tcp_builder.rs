//! The options of a listening TCP socket, set before it binds.
//!
//! Some options only mean something before `bind(2)` or `listen(2)`:
//! `SO_REUSEADDR` (rebind a port whose old connections linger in
//! `TIME_WAIT`), `SO_REUSEPORT` (several sockets listening on one port, the
//! OS spreading connections among them — one per kernel, one kernel per
//! core) and the backlog. So they are gathered in a builder, and the socket
//! is made, configured, bound and set listening in one go.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use super::{require_kernel, TcpListener};

/// Settings for a [`TcpListener`]: address, backlog, `SO_REUSEADDR`,
/// `SO_REUSEPORT`, and `TCP_NODELAY` for the streams it accepts.
///
/// # Examples
///
/// ```
/// use trapline::net::TcpListener;
///
/// trapline::run(async {
///     let listener = TcpListener::builder("127.0.0.1:0".parse().unwrap())
///         .backlog(128)
///         .reuse_port(true)
///         .nodelay(true)
///         .bind()?;
///     assert_ne!(listener.local_addr()?.port(), 0);
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ListenerBuilder {
    addr: SocketAddr,
    backlog: i32,
    reuse_address: bool,
    reuse_port: bool,
    nodelay: bool,
}

impl TcpListener {
    /// A builder for a listener on `addr`, with the defaults of
    /// [`TcpListener::bind`]: backlog [`TcpListener::DEFAULT_BACKLOG`],
    /// `SO_REUSEADDR` on, `SO_REUSEPORT` off, `TCP_NODELAY` off.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::TcpListener;
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::builder("[::1]:0".parse().unwrap()).bind()?;
    ///     assert!(listener.local_addr()?.is_ipv6());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder(addr: SocketAddr) -> ListenerBuilder {
        ListenerBuilder {
            addr,
            backlog: TcpListener::DEFAULT_BACKLOG,
            reuse_address: true,
            reuse_port: false,
            nodelay: false,
        }
    }
}

impl ListenerBuilder {
    /// How many finished handshakes may wait for `accept` (the OS caps it
    /// at `net.core.somaxconn`). Negative or zero means the OS minimum.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::TcpListener;
    ///
    /// trapline::run(async {
    ///     TcpListener::builder("127.0.0.1:0".parse().unwrap()).backlog(8).bind()?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn backlog(mut self, backlog: i32) -> ListenerBuilder {
        self.backlog = backlog.max(0);
        self
    }

    /// `SO_REUSEADDR`: bind even while connections of an earlier listener on
    /// the port sit in `TIME_WAIT`. On by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::TcpListener;
    ///
    /// trapline::run(async {
    ///     TcpListener::builder("127.0.0.1:0".parse().unwrap()).reuse_address(false).bind()?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_address(mut self, on: bool) -> ListenerBuilder {
        self.reuse_address = on;
        self
    }

    /// `SO_REUSEPORT`: several listeners (each with this set) share one
    /// port, and the OS spreads incoming connections among them by a hash of
    /// the peer's address. Off by default.
    ///
    /// # Examples
    ///
    /// Two listeners on one port:
    ///
    /// ```
    /// use trapline::net::TcpListener;
    ///
    /// trapline::run(async {
    ///     let first = TcpListener::builder("127.0.0.1:0".parse().unwrap()).reuse_port(true).bind()?;
    ///     let addr = first.local_addr()?;
    ///     let second = TcpListener::builder(addr).reuse_port(true).bind()?;
    ///     assert_eq!(second.local_addr()?, addr);
    ///     // Without it the port is taken.
    ///     let err = TcpListener::builder(addr).bind().unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_port(mut self, on: bool) -> ListenerBuilder {
        self.reuse_port = on;
        self
    }

    /// `TCP_NODELAY` on every stream the listener accepts. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::builder("127.0.0.1:0".parse().unwrap()).nodelay(true).bind()?;
    ///     let _client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     assert!(server.nodelay()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(mut self, on: bool) -> ListenerBuilder {
        self.nodelay = on;
        self
    }

    /// Makes the socket, sets the options, binds and listens.
    ///
    /// Fails with `NoKernel` outside a kernel, `AddrInUse` if the port is
    /// taken (by a listener without `SO_REUSEPORT`, or this one lacks it).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::TcpListener;
    /// use trapline::TrapError;
    ///
    /// let builder = TcpListener::builder("127.0.0.1:0".parse().unwrap());
    /// let err = builder.clone().bind().unwrap_err();
    /// assert_eq!(TrapError::from_io(&err), Some(&TrapError::NoKernel));
    /// trapline::run(async { builder.bind().map(drop) })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(self) -> io::Result<TcpListener> {
        require_kernel()?;
        let socket = self.socket()?;
        Ok(TcpListener::from_parts(socket, self.nodelay))
    }

    /// The listening socket itself: non-blocking, close-on-exec, options
    /// set, bound and listening. Needs no kernel (the monitor binds before
    /// it builds the kernel it watches); the one place a TCP listening
    /// socket is made.
    pub(crate) fn socket(&self) -> io::Result<Socket> {
        let ty = Type::STREAM.nonblocking().cloexec();
        let socket = Socket::new(Domain::for_address(self.addr), ty, Some(Protocol::TCP))?;
        socket.set_reuse_address(self.reuse_address)?;
        socket.set_reuse_port(self.reuse_port)?;
        socket.bind(&self.addr.into())?;
        socket.listen(self.backlog)?;
        Ok(socket)
    }
}
