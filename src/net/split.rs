//! `into_split`: a TCP stream as two owned halves, one to read, one to write.
//!
//! A reading task and a writing task each own their half and can be spawned
//! apart, with no lifetimes to thread through. Both halves share the one
//! socket (an `Rc`, since a socket never leaves its kernel's thread); the
//! socket closes when both are gone.
//!
//! Discussion: dropping the write half shuts the write direction down, so
//! the peer reads end of stream even while the read half lives on. That is
//! what a proxy copying one direction per task needs: when one side says it
//! has finished, the copy of that direction ends and tells the other side
//! the same way, and the opposite direction carries on.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::rc::Rc;

use super::TcpStream;

impl TcpStream {
    /// Splits the stream into a read half and a write half that two tasks
    /// can own.
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
    ///     let (reader, writer) = server.into_split();
    ///     // The writer task owns its half; the reader stays here.
    ///     let sender = trapline::spawn(async move { writer.write_all(b"from the server").await })?;
    ///     client.write_all(b"from the client").await?;
    ///     let mut buf = [0; 15];
    ///     reader.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"from the client");
    ///     sender.join().await??;
    ///     client.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"from the server");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let shared = Rc::new(self);
        (
            OwnedReadHalf {
                stream: shared.clone(),
            },
            OwnedWriteHalf { stream: shared },
        )
    }
}

/// The reading half of a [`TcpStream`], from [`TcpStream::into_split`].
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
///     let (reader, _writer) = server.into_split();
///     client.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     reader.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct OwnedReadHalf {
    stream: Rc<TcpStream>,
}

/// The writing half of a [`TcpStream`], from [`TcpStream::into_split`].
/// Dropping it shuts the write direction down: the peer reads end of stream.
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
///     let (_reader, writer) = server.into_split();
///     writer.write_all(b"last words").await?;
///     drop(writer);
///     let mut buf = Vec::new();
///     let mut chunk = [0; 64];
///     loop {
///         match client.read(&mut chunk).await? {
///             0 => break, // end of stream, though the read half lives on
///             n => buf.extend_from_slice(&chunk[..n]),
///         }
///     }
///     assert_eq!(buf, b"last words");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct OwnedWriteHalf {
    stream: Rc<TcpStream>,
}

impl OwnedReadHalf {
    /// Reads what is there into `buf`; 0 at end of stream. See [`TcpStream::read`].
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (reader, _writer) = listener.accept().await?.0.into_split();
    ///     drop(client);
    ///     assert_eq!(reader.read(&mut [0; 8]).await?, 0);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn read<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.stream.read(buf)
    }

    /// Reads exactly `buf.len()` bytes. See [`TcpStream::read_exact`].
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (reader, _writer) = listener.accept().await?.0.into_split();
    ///     client.write_all(b"abc").await?;
    ///     let mut buf = [0; 3];
    ///     reader.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"abc");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn read_exact<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<()>> + 'a {
        self.stream.read_exact(buf)
    }

    /// Looks at what is there without taking it. See [`TcpStream::peek`].
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (reader, _writer) = listener.accept().await?.0.into_split();
    ///     client.write_all(b"x").await?;
    ///     let mut buf = [0; 1];
    ///     reader.peek(&mut buf).await?;
    ///     reader.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"x");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn peek<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.stream.peek(buf)
    }

    /// The whole stream, for what the halves do not offer (options, addresses).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (reader, _writer) = listener.accept().await?.0.into_split();
    ///     assert_eq!(reader.stream().peer_addr()?, client.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl OwnedWriteHalf {
    /// Writes some of `buf`. See [`TcpStream::write`].
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_reader, writer) = listener.accept().await?.0.into_split();
    ///     assert_eq!(writer.write(b"ok").await?, 2);
    ///     let mut buf = [0; 2];
    ///     client.read_exact(&mut buf).await?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn write<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.stream.write(buf)
    }

    /// Writes all of `buf`. See [`TcpStream::write_all`].
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_reader, writer) = listener.accept().await?.0.into_split();
    ///     writer.write_all(b"all of it").await?;
    ///     let mut buf = [0; 9];
    ///     client.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"all of it");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn write_all<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        self.stream.write_all(buf)
    }

    /// Writes some of several buffers at once. See [`TcpStream::write_vectored`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::IoSlice;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_reader, writer) = listener.accept().await?.0.into_split();
    ///     let n = writer.write_vectored(&[IoSlice::new(b"a"), IoSlice::new(b"b")]).await?;
    ///     assert_eq!(n, 2);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn write_vectored<'a>(
        &'a self,
        bufs: &'a [IoSlice<'a>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        self.stream.write_vectored(bufs)
    }

    /// The whole stream, for what the halves do not offer (options, addresses).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_reader, writer) = listener.accept().await?.0.into_split();
    ///     writer.stream().set_nodelay(true)?;
    ///     assert_eq!(writer.stream().peer_addr()?, client.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        // The peer may already be gone (NotConnected): nothing to tell it.
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

impl fmt::Debug for OwnedReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedReadHalf")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

impl fmt::Debug for OwnedWriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWriteHalf")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}
