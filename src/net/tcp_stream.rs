//! A connected TCP stream.

use std::future::Future;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::Location;

use socket2::{SockRef, Socket};

use super::io::{read_exact, write_all, Drained, Hint, Io, LeafIo, Wait};
use super::poll_io::PollSeats;

/// `send(2)` flag: a write to a closed peer fails with `EPIPE` instead of
/// raising `SIGPIPE`.
pub(super) const MSG_NOSIGNAL: i32 = 0x4000;

/// A TCP connection.
///
/// Every method takes `&self`: one task may read while another writes the
/// same stream through an `Rc<TcpStream>`. Two readers (or two writers)
/// waiting at once get `ResourceBusy`.
///
/// # Examples
///
/// ```no_run
/// use trapline::net::TcpStream;
///
/// trapline::run(async {
///     let stream = TcpStream::connect("127.0.0.1:7000").await?;
///     stream.write_all(b"ping").await?;
///     let mut buf = [0; 4];
///     stream.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"ping");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpStream {
    /// A std stream rather than a socket2 one: std reads into initialised
    /// buffers (`peek`, vectored reads) without `unsafe`; socket2 reaches the
    /// options through a `SockRef`.
    pub(super) socket: std::net::TcpStream,
    /// The leaves of poll-style I/O (`poll_read`, `poll_write`).
    pub(super) seats: PollSeats,
    /// Whether the last read came back short (see `Drained`).
    pub(super) drained: Drained,
    /// Not `Send`: the fd is registered with the kernel of this thread.
    _kernel: PhantomData<*const ()>,
}

impl TcpStream {
    pub(crate) fn from_socket(socket: Socket) -> TcpStream {
        TcpStream {
            socket: socket.into(),
            seats: PollSeats::new(),
            drained: Drained::default(),
            _kernel: PhantomData,
        }
    }

    /// Reads what is there into `buf`, waiting if nothing is; returns how
    /// many bytes, 0 at end of stream.
    ///
    /// A `ReadWait` trap: cancellable, timeout-able; `ResourceBusy` if another
    /// leaf is reading this stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"hello").await?;
    ///     drop(client);
    ///     let mut buf = [0; 16];
    ///     let n = server.read(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"hello");
    ///     assert_eq!(server.read(&mut buf).await?, 0, "end of stream");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn read<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.read_at(buf, Location::caller())
    }

    /// Writes some of `buf`, waiting if the send buffer is full; returns how
    /// many bytes were written.
    ///
    /// A `WriteWait` trap when it waits: cancellable, timeout-able;
    /// `ResourceBusy` if another leaf is writing this stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     let n = client.write(b"ping").await?;
    ///     assert_eq!(n, 4, "an empty send buffer takes it all");
    ///     let mut buf = [0; 4];
    ///     server.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"ping");
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
    /// If it is interrupted (cancelled, timed out, an error), some of `buf`
    /// may have been written.
    ///
    /// # Examples
    ///
    /// More than the socket buffers hold: the writer waits for a reader in
    /// another task.
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     let reader = trapline::spawn(async move {
    ///         let mut got = vec![0; 4 << 20];
    ///         server.read_exact(&mut got).await.map(|()| got)
    ///     })?;
    ///     let sent = vec![7; 4 << 20];
    ///     client.write_all(&sent).await?;
    ///     assert_eq!(reader.join().await??, sent);
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
    /// If it is interrupted, some bytes may have been read into `buf`.
    ///
    /// # Examples
    ///
    /// Reading a frame with a one-byte length prefix:
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"\x05hello").await?;
    ///     let mut len = [0; 1];
    ///     server.read_exact(&mut len).await?;
    ///     let mut body = vec![0; len[0].into()];
    ///     server.read_exact(&mut body).await?;
    ///     assert_eq!(body, b"hello");
    ///     drop(client);
    ///     let eof = server.read_exact(&mut len).await.unwrap_err();
    ///     assert_eq!(eof.kind(), std::io::ErrorKind::UnexpectedEof);
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

    /// Shuts down the read half, the write half (the peer reads end of
    /// stream), or both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"bye").await?;
    ///     client.shutdown(Shutdown::Write)?;
    ///     let mut buf = [0; 3];
    ///     server.read_exact(&mut buf).await?;
    ///     assert_eq!(server.read(&mut buf).await?, 0, "end of stream, though `client` lives on");
    ///     server.write_all(b"ok").await?; // the other direction still works
    ///     client.read_exact(&mut buf[..2]).await?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how)
    }

    /// The local address of the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     assert_eq!(server.local_addr()?, listener.local_addr()?);
    ///     assert_eq!(client.local_addr()?, server.peer_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     assert_eq!(client.peer_addr()?, listener.local_addr()?);
    ///     assert_eq!(server.peer_addr()?, client.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// Sets `TCP_NODELAY`: send small writes at once instead of batching them.
    ///
    /// # Examples
    ///
    /// A request-response server sends each small reply at once:
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     server.set_nodelay(true)?;
    ///     assert!(server.nodelay()?);
    ///     drop(client);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     assert!(!client.nodelay()?, "off unless set");
    ///     client.set_nodelay(true)?;
    ///     assert!(client.nodelay()?);
    ///     drop(server);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.nodelay()
    }
}

impl LeafIo for TcpStream {
    fn read_at<'a>(
        &'a self,
        buf: &'a mut [u8],
        location: &'static Location<'static>,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::stream_read(location, self, move |stream| {
            let read = stream
                .seats
                .before_wait(Wait::Read, (&stream.socket).read(buf));
            stream
                .drained
                .note(&read, buf.len(), stream.seats.read_is_empty());
            read
        })
    }

    fn write_at<'a>(
        &'a self,
        buf: &'a [u8],
        location: &'static Location<'static>,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::new(self.as_raw_fd(), Wait::Write, location, move || {
            let sent = SockRef::from(&self.socket).send_with_flags(buf, MSG_NOSIGNAL);
            self.seats.before_wait(Wait::Write, sent)
        })
    }
}

/// A read's hint is the stream's [`Drained`].
impl Hint for TcpStream {
    fn take_untried(&self) -> bool {
        self.drained.take_untried()
    }

    fn parked(&self, parked: bool) {
        self.drained.parked(parked)
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        // Forget the fd before the socket closes it; no kernel, nothing to forget.
        let _ = trapline_traps::io_release(self.socket.as_raw_fd());
    }
}

#[cfg(test)]
mod tests {
    use socket2::{Domain, Type};

    use super::*;

    /// A read is its leaf (three words), its buffer, the stream it hands its
    /// syscall, and one word for the fd and three flags: the stream is not
    /// held twice. An idle connection holds one for as long as it is idle.
    #[test]
    fn a_pending_read_is_seven_words() {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
        let stream = TcpStream::from_socket(socket);
        let mut buf = [0; 64];
        assert_eq!(std::mem::size_of_val(&stream.read(&mut buf)), 56);
        assert_eq!(std::mem::size_of_val(&stream.peek(&mut buf)), 56);
    }
}
