//! The less common reads and writes of a TCP stream: `peek` and vectored I/O.
//!
//! Same shape as `read` and `write`: one `Io` leaf that tries the syscall
//! and traps only on `WouldBlock`. A peek waits in the reader's seat and a
//! vectored write in the writer's, so they obey the one-reader, one-writer
//! rule like the rest.

use std::future::Future;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::os::fd::AsRawFd;
use std::panic::Location;

use socket2::SockRef;

use super::io::{Io, Wait};
use super::tcp_stream::MSG_NOSIGNAL;
use super::TcpStream;

impl TcpStream {
    /// Reads what is there into `buf` without taking it off the stream:
    /// the next read sees the same bytes. Waits if nothing is there; 0 at
    /// end of stream.
    ///
    /// A `ReadWait` trap: cancellable, timeout-able; `ResourceBusy` if
    /// another leaf is reading this stream.
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
    ///     client.write_all(b"GET /").await?;
    ///     let mut head = [0; 3];
    ///     server.peek(&mut head).await?;
    ///     assert_eq!(&head, b"GET");
    ///     let mut all = [0; 5];
    ///     server.read_exact(&mut all).await?;
    ///     assert_eq!(&all, b"GET /", "the peeked bytes are still there");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn peek<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::stream_read(Location::caller(), self, move |stream| {
            let peeked = stream
                .seats
                .before_wait(Wait::Read, stream.socket.peek(buf));
            // The bytes stay: the next read must try.
            stream.drained.forget();
            peeked
        })
    }

    /// Reads into several buffers at once (`readv(2)`), filling them in
    /// order; returns how many bytes in all, 0 at end of stream.
    ///
    /// A `ReadWait` trap when it waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::IoSliceMut;
    /// use trapline::net::{TcpListener, TcpStream};
    ///
    /// trapline::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"headbody").await?;
    ///     drop(client);
    ///     let (mut head, mut body) = ([0; 4], [0; 4]);
    ///     let mut got = 0;
    ///     while got < 8 {
    ///         let mut bufs = [IoSliceMut::new(&mut head), IoSliceMut::new(&mut body)];
    ///         let mut bufs = &mut bufs[..];
    ///         IoSliceMut::advance_slices(&mut bufs, got);
    ///         got += server.read_vectored(bufs).await?;
    ///     }
    ///     assert_eq!((&head, &body), (b"head", b"body"));
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn read_vectored<'a>(
        &'a self,
        bufs: &'a mut [IoSliceMut<'a>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::stream_read(Location::caller(), self, move |stream| {
            let asked = bufs.iter().map(|b| b.len()).sum();
            let read = stream
                .seats
                .before_wait(Wait::Read, (&stream.socket).read_vectored(bufs));
            stream
                .drained
                .note(&read, asked, stream.seats.read_is_empty());
            read
        })
    }

    /// Writes some of several buffers at once (`sendmsg(2)`), in order;
    /// returns how many bytes in all. One syscall for a header and a body
    /// held apart.
    ///
    /// A `WriteWait` trap when the send buffer is full.
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
    ///     let (server, _) = listener.accept().await?;
    ///     let n = client.write_vectored(&[IoSlice::new(b"head"), IoSlice::new(b"body")]).await?;
    ///     assert_eq!(n, 8, "an empty send buffer takes both");
    ///     let mut got = [0; 8];
    ///     server.read_exact(&mut got).await?;
    ///     assert_eq!(&got, b"headbody");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn write_vectored<'a>(
        &'a self,
        bufs: &'a [IoSlice<'a>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        Io::new(
            self.as_raw_fd(),
            Wait::Write,
            Location::caller(),
            move || {
                let sent = SockRef::from(&self.socket).send_vectored_with_flags(bufs, MSG_NOSIGNAL);
                self.seats.before_wait(Wait::Write, sent)
            },
        )
    }
}
