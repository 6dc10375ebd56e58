//! UDP sockets: datagrams, unicast, multicast and broadcast.
//!
//! A datagram socket has no stream to wait on, only a queue of whole
//! messages: `recv_from` waits (`ReadWait`) until one is there and returns
//! exactly one; `send_to` waits (`WriteWait`) only when the socket's send
//! buffer is full, which on most systems it never is. A datagram larger
//! than the buffer given to `recv` is cut to fit: the rest is lost, as
//! `recv(2)` says.
//!
//! Options that need no waiting — multicast membership, broadcast, TTL —
//! are plain calls, in `udp_options`.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::Location;

use socket2::{Domain, Protocol, Socket, Type};

use super::io::{Io, Wait};
use super::require_kernel;

/// A UDP socket.
///
/// Every method takes `&self`; one task receives and one sends at a time
/// (`ResourceBusy` for a second waiter in the same direction).
///
/// # Examples
///
/// ```
/// use trapline::net::UdpSocket;
///
/// trapline::run(async {
///     let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
///     let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    pub(super) socket: std::net::UdpSocket,
    /// Not `Send`: the fd is registered with the kernel of this thread.
    _kernel: PhantomData<*const ()>,
}

impl UdpSocket {
    /// Binds a UDP socket to `addr`; port 0 picks a free port.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("[::1]:0".parse().unwrap())?;
    ///     assert_ne!(socket.local_addr()?.port(), 0);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        require_kernel()?;
        let ty = Type::DGRAM.nonblocking().cloexec();
        let socket = Socket::new(Domain::for_address(addr), ty, Some(Protocol::UDP))?;
        socket.bind(&addr.into())?;
        Ok(UdpSocket {
            socket: socket.into(),
            _kernel: PhantomData,
        })
    }

    /// Takes over a std socket (made with options this type does not offer),
    /// switching it to non-blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let std_socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    ///     let socket = UdpSocket::from_std(std_socket)?;
    ///     assert!(socket.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        require_kernel()?;
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            socket,
            _kernel: PhantomData,
        })
    }

    /// Sets the default peer: `send` goes there, and `recv` takes datagrams
    /// from there only. Never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let server = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     client.connect(server.local_addr()?)?;
    ///     assert_eq!(client.peer_addr()?, server.local_addr()?);
    ///     client.send(b"hi").await?;
    ///     let mut buf = [0; 2];
    ///     server.recv_from(&mut buf).await?;
    ///     assert_eq!(&buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        self.socket.connect(addr)
    }

    /// Sends one datagram to `target`; returns how many bytes were sent.
    ///
    /// A `WriteWait` trap if the send buffer is full.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let n = socket.send_to(b"to myself", socket.local_addr()?).await?;
    ///     assert_eq!(n, 9);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::new(
            self.as_raw_fd(),
            Wait::Write,
            Location::caller(),
            move || self.socket.send_to(buf, target),
        )
    }

    /// Waits for one datagram; returns its length (cut to `buf`) and sender.
    ///
    /// A `ReadWait` trap: cancellable, timeout-able.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     socket.send_to(b"one", socket.local_addr()?).await?;
    ///     socket.send_to(b"two", socket.local_addr()?).await?;
    ///     let mut buf = [0; 8];
    ///     let (n, _) = socket.recv_from(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"one", "one datagram at a time");
    ///     let (n, _) = socket.recv_from(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"two");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + 'a {
        Io::new(
            self.as_raw_fd(),
            Wait::Read,
            Location::caller(),
            move || self.socket.recv_from(buf),
        )
    }

    /// Looks at the next datagram without taking it; returns its length
    /// (cut to `buf`) and sender.
    ///
    /// A `ReadWait` trap when it waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     socket.send_to(b"twice", socket.local_addr()?).await?;
    ///     let mut buf = [0; 8];
    ///     let (n, _) = socket.peek_from(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"twice");
    ///     let (n, _) = socket.recv_from(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"twice");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn peek_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + 'a {
        Io::new(
            self.as_raw_fd(),
            Wait::Read,
            Location::caller(),
            move || self.socket.peek_from(buf),
        )
    }

    /// Sends one datagram to the peer set by [`UdpSocket::connect`].
    ///
    /// A `WriteWait` trap if the send buffer is full. Without a peer it
    /// fails with `NotConnected` (`EDESTADDRREQ`).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let err = socket.send(b"nowhere").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotConnected, "no peer yet");
    ///     socket.connect(socket.local_addr()?)?;
    ///     assert_eq!(socket.send(b"somewhere").await?, 9);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn send<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::new(
            self.as_raw_fd(),
            Wait::Write,
            Location::caller(),
            move || self.socket.send(buf).map_err(no_peer),
        )
    }

    /// Waits for one datagram from the connected peer; returns its length.
    ///
    /// A `ReadWait` trap: cancellable, timeout-able.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     socket.connect(socket.local_addr()?)?;
    ///     socket.send(b"echo").await?;
    ///     let mut buf = [0; 8];
    ///     let n = socket.recv(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"echo");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn recv<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::new(
            self.as_raw_fd(),
            Wait::Read,
            Location::caller(),
            move || self.socket.recv(buf),
        )
    }

    /// The address the socket is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     assert!(socket.local_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The connected peer; `NotConnected` if none.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     assert_eq!(socket.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        // Forget the fd before the socket closes it; no kernel, nothing to forget.
        let _ = trapline_traps::io_release(self.socket.as_raw_fd());
    }
}

/// `EDESTADDRREQ` (a send with no peer set) as `NotConnected`: std leaves it
/// `Uncategorized`, which a caller cannot match on.
fn no_peer(err: io::Error) -> io::Error {
    const EDESTADDRREQ: i32 = 89;
    if err.raw_os_error() == Some(EDESTADDRREQ) {
        io::Error::new(
            io::ErrorKind::NotConnected,
            "no peer: connect the socket first",
        )
    } else {
        err
    }
}
