//! Networking on trapline: TCP, UDP and Unix domain sockets built on
//! socket2 and two traps, `ReadWait` and `WriteWait`.
//!
//! - TCP: [`TcpListener`] (and its [`ListenerBuilder`]: backlog,
//!   `SO_REUSEADDR`, `SO_REUSEPORT`, nodelay for accepted streams),
//!   [`TcpStream`] (connect by address or by name, with a limit; options;
//!   peek; vectored I/O; [`TcpStream::into_split`] into owned halves),
//!   [`copy_bidirectional`] for proxies.
//! - UDP: [`UdpSocket`] — unicast, connected, multicast, broadcast.
//! - Unix: [`UnixListener`], [`UnixStream`], [`UnixDatagram`] — on paths or
//!   Linux abstract names; a stale socket file is removed only when asked.
//! - Names: [`lookup_host`] and [`ToAddrs`] resolve `"host:port"` on a
//!   blocking worker (`run_in_thread`), so the kernel never blocks in `getaddrinfo`.
//! - With the `futures-io` feature (on by default), the stream types
//!   implement `AsyncRead`/`AsyncWrite`.
//!
//! Every operation is optimistic: it tries the syscall first and traps only
//! on `WouldBlock`. Nothing here talks to mio; the kernel registers an fd the
//! first time a leaf waits on it, and each socket tells the kernel to forget
//! its fd (`IoRelease`) in `Drop`, before closing it.
//!
//! One task reads and one task writes a stream at a time: a second reader (or
//! writer) waiting at once gets `ResourceBusy`. To read in one task while
//! another writes, share the stream: every method takes `&self`, so an
//! `Rc<TcpStream>` in each task does it.
//!
//! A socket belongs to the kernel of the thread that made it — its fd is
//! registered there — so the socket types are not `Send`:
//!
//! ```compile_fail
//! fn send<T: Send>(_: T) {}
//! trapline::run(async {
//!     let listener = trapline::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
//!     send(listener); // error: `*const ()` cannot be sent between threads safely
//! })
//! .unwrap();
//! ```
//!
//! Linux only (the kernel is built on epoll).
//!
//! # Examples
//!
//! One echo, with the server in a task of its own:
//!
//! ```
//! use trapline::net::{TcpListener, TcpStream};
//!
//! trapline::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
//!     let addr = listener.local_addr()?;
//!     let server = trapline::spawn(async move {
//!         let (stream, _) = listener.accept().await?;
//!         let mut buf = [0; 4];
//!         stream.read_exact(&mut buf).await?;
//!         stream.write_all(&buf).await
//!     })?;
//!     let client = TcpStream::connect(addr).await?;
//!     client.write_all(b"ping").await?;
//!     let mut buf = [0; 4];
//!     client.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"ping");
//!     server.join().await??;
//!     Ok::<(), std::io::Error>(())
//! })??;
//! # Ok::<(), std::io::Error>(())
//! ```

mod copy;
#[cfg(feature = "futures-io")]
mod futures_io;
mod io;
mod poll_io;
mod resolve;
mod split;
mod tcp_builder;
mod tcp_connect;
mod tcp_listener;
mod tcp_options;
mod tcp_stream;
mod tcp_stream_io;
mod udp;
mod udp_options;
mod unix_addr;
mod unix_datagram;
mod unix_listener;
mod unix_stream;

pub use copy::copy_bidirectional;
pub use resolve::{lookup_host, Addrs, ToAddrs};
pub use split::{OwnedReadHalf, OwnedWriteHalf};
pub use tcp_builder::ListenerBuilder;
pub(crate) use tcp_listener::listening;
pub use tcp_listener::TcpListener;
pub use tcp_stream::TcpStream;
pub use udp::UdpSocket;
pub use unix_datagram::UnixDatagram;
pub use unix_listener::UnixListener;
pub use unix_stream::UnixStream;

use std::net::SocketAddr;

use socket2::SockAddr;
use trapline_traps::TrapError;

/// Fails with `NoKernel` unless a kernel runs on this thread.
fn require_kernel() -> std::io::Result<()> {
    if trapline_traps::in_kernel() {
        Ok(())
    } else {
        Err(TrapError::NoKernel.into())
    }
}

/// An IPv4 or IPv6 address out of a socket2 address.
fn inet(addr: SockAddr) -> std::io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an IP socket address")
    })
}
