//! Unix domain datagram sockets: whole messages between processes of one
//! host, on a path, an abstract name, or unnamed.
//!
//! Unlike UDP, a Unix datagram is never lost or reordered in flight: a full
//! receiver makes the sender wait (`WriteWait`), so `send` can truly block.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::panic::Location;
use std::path::{Path, PathBuf};

use socket2::{SockAddr, Type};

use super::io::{Io, Wait};
use super::require_kernel;
use super::unix_addr::{abstract_addr, path_addr, socket};

/// A Unix domain datagram socket.
///
/// # Examples
///
/// ```
/// use trapline::net::UnixDatagram;
///
/// trapline::run(async {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"one").await?;
///     a.send(b"two").await?;
///     let mut buf = [0; 8];
///     let n = b.recv(&mut buf).await?;
///     assert_eq!(&buf[..n], b"one", "message boundaries are kept");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    socket: std::os::unix::net::UnixDatagram,
    /// Not `Send`: the fd is registered with the kernel of this thread.
    _kernel: PhantomData<*const ()>,
}

impl UnixDatagram {
    fn new(socket: std::os::unix::net::UnixDatagram) -> UnixDatagram {
        UnixDatagram {
            socket,
            _kernel: PhantomData,
        }
    }

    fn bind_addr(addr: Option<&SockAddr>) -> io::Result<UnixDatagram> {
        require_kernel()?;
        let socket = socket(Type::DGRAM)?;
        if let Some(addr) = addr {
            socket.bind(addr)?;
        }
        Ok(UnixDatagram::new(socket.into()))
    }

    /// Binds to the socket file `path`, which must not exist yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// let path = std::env::temp_dir().join(format!("trapline-doc-dgram-{}.sock", std::process::id()));
    /// trapline::run(async {
    ///     let socket = UnixDatagram::bind(&path)?;
    ///     assert_eq!(socket.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path)
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_addr(Some(&path_addr(path.as_ref())?))
    }

    /// Binds to the abstract name `name` (Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let server = UnixDatagram::bind_abstract(b"trapline-doc-dgram")?;
    ///     let client = UnixDatagram::unbound()?;
    ///     client.send_to_abstract(b"hi", b"trapline-doc-dgram").await?;
    ///     let mut buf = [0; 2];
    ///     server.recv_from(&mut buf).await?;
    ///     assert_eq!(&buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_abstract(name: &[u8]) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_addr(Some(&abstract_addr(name)?))
    }

    /// A socket bound to no address: it can send, but nobody can answer it.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let socket = UnixDatagram::unbound()?;
    ///     assert!(socket.local_addr()?.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::bind_addr(None)
    }

    /// A pair of connected datagram sockets (`socketpair(2)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     b.send(b"back").await?;
    ///     let mut buf = [0; 4];
    ///     a.recv(&mut buf).await?;
    ///     assert_eq!(&buf, b"back");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        require_kernel()?;
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((UnixDatagram::new(a), UnixDatagram::new(b)))
    }

    /// Sets the default peer to the socket at `path`. Never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// let path = std::env::temp_dir().join(format!("trapline-doc-dconn-{}.sock", std::process::id()));
    /// trapline::run(async {
    ///     let server = UnixDatagram::bind(&path)?;
    ///     let client = UnixDatagram::unbound()?;
    ///     client.connect(&path)?;
    ///     client.send(b"x").await?;
    ///     server.recv(&mut [0; 1]).await?;
    ///     std::fs::remove_file(&path)
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.socket.connect(path)
    }

    /// Sets the default peer to the abstract name `name` (Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let _server = UnixDatagram::bind_abstract(b"trapline-doc-dconn-abs")?;
    ///     let client = UnixDatagram::unbound()?;
    ///     client.connect_abstract(b"trapline-doc-dconn-abs")?;
    ///     client.send(b"x").await?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_abstract(&self, name: &[u8]) -> io::Result<()> {
        socket2::SockRef::from(&self.socket).connect(&abstract_addr(name)?)
    }

    /// Sends one datagram to the socket at `path`.
    ///
    /// A `WriteWait` trap if the receiver's queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// let path = std::env::temp_dir().join(format!("trapline-doc-dsend-{}.sock", std::process::id()));
    /// trapline::run(async {
    ///     let server = UnixDatagram::bind(&path)?;
    ///     UnixDatagram::unbound()?.send_to(b"note", &path).await?;
    ///     let mut buf = [0; 4];
    ///     server.recv(&mut buf).await?;
    ///     assert_eq!(&buf, b"note");
    ///     std::fs::remove_file(&path)
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        path: impl AsRef<Path>,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        let location = Location::caller();
        let path: PathBuf = path.as_ref().to_owned();
        async move {
            let addr = path_addr(&path)?;
            self.send_to_sockaddr(buf, addr, location).await
        }
    }

    /// Sends one datagram to the abstract name `name` (Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let err = UnixDatagram::unbound()?.send_to_abstract(b"x", b"trapline-doc-absent").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn send_to_abstract<'a>(
        &'a self,
        buf: &'a [u8],
        name: &[u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        let location = Location::caller();
        let addr = abstract_addr(name);
        async move { self.send_to_sockaddr(buf, addr?, location).await }
    }

    /// Sends one datagram back to `addr`, an address [`UnixDatagram::recv_from`] gave.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let server = UnixDatagram::bind_abstract(b"trapline-doc-reply")?;
    ///     let client = UnixDatagram::bind_abstract(b"trapline-doc-reply-client")?;
    ///     client.send_to_abstract(b"ping", b"trapline-doc-reply").await?;
    ///     let mut buf = [0; 4];
    ///     let (n, from) = server.recv_from(&mut buf).await?;
    ///     server.send_to_addr(&buf[..n], &from).await?;
    ///     client.recv(&mut buf).await?;
    ///     assert_eq!(&buf, b"ping");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn send_to_addr<'a>(
        &'a self,
        buf: &'a [u8],
        addr: &'a SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::new(
            self.as_raw_fd(),
            Wait::Write,
            Location::caller(),
            move || self.socket.send_to_addr(buf, addr),
        )
    }

    async fn send_to_sockaddr(
        &self,
        buf: &[u8],
        addr: SockAddr,
        location: &'static Location<'static>,
    ) -> io::Result<usize> {
        let sock = socket2::SockRef::from(&self.socket);
        Io::new(self.as_raw_fd(), Wait::Write, location, move || {
            sock.send_to(buf, &addr)
        })
        .await
    }

    /// Waits for one datagram; returns its length (cut to `buf`) and sender.
    ///
    /// A `ReadWait` trap: cancellable, timeout-able.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"long message").await?;
    ///     let mut buf = [0; 4];
    ///     let (n, from) = b.recv_from(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"long", "cut to the buffer");
    ///     assert!(from.is_unnamed());
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

    /// Sends one datagram to the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixDatagram::pair()?;
    ///     assert_eq!(a.send(b"abc").await?, 3);
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
            move || self.socket.send(buf),
        )
    }

    /// Waits for one datagram from the connected peer; returns its length.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(b"abc").await?;
    ///     let mut buf = [0; 8];
    ///     assert_eq!(b.recv(&mut buf).await?, 3);
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
    /// use std::os::linux::net::SocketAddrExt;
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let socket = UnixDatagram::bind_abstract(b"trapline-doc-dlocal")?;
    ///     assert_eq!(socket.local_addr()?.as_abstract_name(), Some(&b"trapline-doc-dlocal"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixDatagram;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixDatagram::pair()?;
    ///     assert!(a.peer_addr()?.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Drop for UnixDatagram {
    fn drop(&mut self) {
        // Forget the fd before the socket closes it; no kernel, nothing to forget.
        let _ = trapline_traps::io_release(self.socket.as_raw_fd());
    }
}
