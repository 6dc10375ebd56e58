//! A Unix domain listening socket, on a path or an abstract name.
//!
//! A listener bound to a path leaves its socket file behind when it closes
//! (as every Unix program's does). The next `bind` to that path then fails
//! with `AddrInUse`, which is the safe answer: trapline never removes a file
//! it was not asked to. [`UnixListener::bind_replacing_stale`] is the asking:
//! it removes the file only if it is a socket nobody listens on.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::SocketAddr;
use std::panic::Location;
use std::path::Path;

use socket2::{SockAddr, Type};

use super::io::{Io, Wait};
use super::unix_addr::{abstract_addr, path_addr, socket};
use super::{require_kernel, UnixStream};

/// A Unix domain socket listening for connections.
///
/// # Examples
///
/// ```
/// use trapline::net::{UnixListener, UnixStream};
///
/// trapline::run(async {
///     let listener = UnixListener::bind_abstract(b"trapline-doc-listener")?;
///     let client = UnixStream::connect_abstract(b"trapline-doc-listener").await?;
///     let (server, _) = listener.accept().await?;
///     client.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    listener: std::os::unix::net::UnixListener,
    /// Not `Send`: the fd is registered with the kernel of this thread.
    _kernel: PhantomData<*const ()>,
}

impl UnixListener {
    /// Binds to the socket file `path`, which must not exist yet
    /// (`AddrInUse` if it does, even if it is stale).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixListener;
    ///
    /// let path = std::env::temp_dir().join(format!("trapline-doc-bind-{}.sock", std::process::id()));
    /// trapline::run(async {
    ///     let listener = UnixListener::bind(&path)?;
    ///     assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    ///     drop(listener);
    ///     // The file stays behind, so binding again is refused...
    ///     let err = UnixListener::bind(&path).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    ///     std::fs::remove_file(&path)
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::bind_addr(&path_addr(path.as_ref())?)
    }

    /// Binds to `path`, first removing a *stale* socket file there: one that
    /// is a socket and that nobody listens on (a connect is refused).
    ///
    /// A live listener at `path` gives `AddrInUse`, even one whose backlog is
    /// full; a file there that is not a socket gives `AlreadyExists`; neither
    /// is touched. The probe is a non-blocking connection, so it never waits:
    /// a live listener there sees one connection that ends at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixListener;
    ///
    /// let path = std::env::temp_dir().join(format!("trapline-doc-stale-{}.sock", std::process::id()));
    /// trapline::run(async {
    ///     drop(UnixListener::bind(&path)?); // leaves a stale file
    ///     let listener = UnixListener::bind_replacing_stale(&path)?;
    ///     // A live one is not replaced.
    ///     let err = UnixListener::bind_replacing_stale(&path).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    ///     drop(listener);
    ///     std::fs::remove_file(&path)
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_replacing_stale(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let addr = path_addr(path)?;
        require_kernel()?;
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ))
            }
            Ok(_) => {
                // The probe is a non-blocking connect, which never blocks
                // the kernel's thread: a live listener accepts it or, with
                // its backlog full, answers `EAGAIN`; nobody listening is
                // `ECONNREFUSED`.
                let probe = socket(Type::STREAM)?;
                match probe.connect(&addr) {
                    Ok(()) => return Err(listening(path)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(listening(path)),
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        std::fs::remove_file(path)?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        UnixListener::bind_addr(&addr)
    }

    /// Binds to the abstract name `name` (Linux): no file, nothing to clean up.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixListener;
    ///
    /// trapline::run(async {
    ///     let listener = UnixListener::bind_abstract(b"trapline-doc-abstract")?;
    ///     # use std::os::linux::net::SocketAddrExt;
    ///     assert_eq!(listener.local_addr()?.as_abstract_name(), Some(&b"trapline-doc-abstract"[..]));
    ///     let err = UnixListener::bind_abstract(b"trapline-doc-abstract").unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_abstract(name: &[u8]) -> io::Result<UnixListener> {
        UnixListener::bind_addr(&abstract_addr(name)?)
    }

    fn bind_addr(addr: &SockAddr) -> io::Result<UnixListener> {
        require_kernel()?;
        let socket = socket(Type::STREAM)?;
        socket.bind(addr)?;
        socket.listen(super::TcpListener::DEFAULT_BACKLOG)?;
        Ok(UnixListener {
            listener: socket.into(),
            _kernel: PhantomData,
        })
    }

    /// Waits for a connection; returns the stream and the peer's address
    /// (usually unnamed).
    ///
    /// A `ReadWait` trap: cancellable, timeout-able.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{UnixListener, UnixStream};
    ///
    /// trapline::run(async {
    ///     let listener = UnixListener::bind_abstract(b"trapline-doc-accept")?;
    ///     let _client = UnixStream::connect_abstract(b"trapline-doc-accept").await?;
    ///     let (_server, peer) = listener.accept().await?;
    ///     assert!(peer.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn accept(&self) -> impl Future<Output = io::Result<(UnixStream, SocketAddr)>> + '_ {
        Io::new(
            self.as_raw_fd(),
            Wait::Read,
            Location::caller(),
            move || {
                let (stream, peer) = self.listener.accept()?;
                stream.set_nonblocking(true)?;
                Ok((UnixStream::from_std_unchecked(stream), peer))
            },
        )
    }

    /// The address the listener is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UnixListener;
    ///
    /// trapline::run(async {
    ///     let listener = UnixListener::bind_abstract(b"trapline-doc-local")?;
    ///     assert!(listener.local_addr()?.as_pathname().is_none());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        // Forget the fd before the socket closes it; no kernel, nothing to forget.
        let _ = trapline_traps::io_release(self.listener.as_raw_fd());
    }
}

/// The error for a path a live listener holds.
fn listening(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("a server is listening on {}", path.display()),
    )
}
