//! Socket options of a TCP stream: keepalive, linger, buffer sizes, TTL.
//!
//! Each is one `setsockopt(2)`/`getsockopt(2)` through socket2, answered at
//! once: options never wait, so none of these is a trap. The getters read
//! back what the OS made of a setting, which is not always what was asked:
//! Linux doubles a requested buffer size to leave room for its bookkeeping.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use super::TcpStream;

impl TcpStream {
    /// Turns TCP keepalive on, probing an idle connection after `idle`, or
    /// off with `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert_eq!(client.keepalive()?, None);
    ///     client.set_keepalive(Some(Duration::from_secs(60)))?;
    ///     assert_eq!(client.keepalive()?, Some(Duration::from_secs(60)));
    ///     client.set_keepalive(None)?;
    ///     assert_eq!(client.keepalive()?, None);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        let sock = SockRef::from(&self.socket);
        match idle {
            Some(idle) => sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle)),
            None => sock.set_keepalive(false),
        }
    }

    /// The keepalive idle time if keepalive is on, `None` if it is off.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     client.set_keepalive(Some(Duration::from_secs(30)))?;
    ///     assert_eq!(client.keepalive()?, Some(Duration::from_secs(30)));
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keepalive(&self) -> io::Result<Option<Duration>> {
        let sock = SockRef::from(&self.socket);
        if sock.keepalive()? {
            sock.tcp_keepalive_time().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Sets `SO_LINGER`: with `Some(d)`, closing waits up to `d` for unsent
    /// data (`Some(ZERO)` resets the connection at close); `None`, the
    /// default, closes in the background.
    ///
    /// Discussion: the wait of a lingering close happens inside `close(2)`,
    /// in the socket's `Drop`, and blocks the kernel's thread for as long.
    /// `Some(Duration::ZERO)` (abort with a reset) is the one setting that
    /// never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert_eq!(client.linger()?, None);
    ///     client.set_linger(Some(Duration::ZERO))?;
    ///     assert_eq!(client.linger()?, Some(Duration::ZERO));
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(&self.socket).set_linger(linger)
    }

    /// The `SO_LINGER` setting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     client.set_linger(Some(Duration::from_secs(1)))?;
    ///     assert_eq!(client.linger()?, Some(Duration::from_secs(1)));
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(&self.socket).linger()
    }

    /// Asks for a send buffer of `size` bytes (`SO_SNDBUF`).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     client.set_send_buffer_size(64 * 1024)?;
    ///     // Linux doubles the request for its own bookkeeping.
    ///     assert!(client.send_buffer_size()? >= 64 * 1024);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        SockRef::from(&self.socket).set_send_buffer_size(size)
    }

    /// The send buffer size the OS gave (`SO_SNDBUF`).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert!(client.send_buffer_size()? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        SockRef::from(&self.socket).send_buffer_size()
    }

    /// Asks for a receive buffer of `size` bytes (`SO_RCVBUF`).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     client.set_recv_buffer_size(32 * 1024)?;
    ///     assert!(client.recv_buffer_size()? >= 32 * 1024);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        SockRef::from(&self.socket).set_recv_buffer_size(size)
    }

    /// The receive buffer size the OS gave (`SO_RCVBUF`).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert!(client.recv_buffer_size()? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        SockRef::from(&self.socket).recv_buffer_size()
    }

    /// Sets the time-to-live of outgoing packets (`IP_TTL`; hop limit on IPv6).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     client.set_ttl(12)?;
    ///     assert_eq!(client.ttl()?, 12);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let sock = SockRef::from(&self.socket);
        if self.socket.local_addr()?.is_ipv6() {
            sock.set_unicast_hops_v6(ttl)
        } else {
            sock.set_ttl_v4(ttl)
        }
    }

    /// The time-to-live of outgoing packets.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("[::1]:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     client.set_ttl(7)?;
    ///     assert_eq!(client.ttl()?, 7);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        let sock = SockRef::from(&self.socket);
        if self.socket.local_addr()?.is_ipv6() {
            sock.unicast_hops_v6()
        } else {
            sock.ttl_v4()
        }
    }
}
