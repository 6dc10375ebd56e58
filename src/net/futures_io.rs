//! `futures-io` for trapline's streams: `AsyncRead` and `AsyncWrite` (the
//! `futures-io` feature, on by default).
//!
//! With them the whole `futures::io` toolbox works on trapline sockets:
//! `copy`, `BufReader` (which brings `AsyncBufRead`: `lines`,
//! `read_line`, `read_until`), `read_to_end`, `split`, codecs built on
//! these traits. Every impl is a thin call of the poll-style methods in
//! `poll_io`, which try the syscall before they trap.
//!
//! Implemented for `TcpStream`, `UnixStream`, shared references to both (so
//! one task can read through `&stream` while another writes), and the owned
//! halves of `TcpStream::into_split`. `poll_flush` has nothing to do (there
//! is no user-space buffer); `poll_close` shuts the write direction down, so
//! the peer reads end of stream.
//!
//! Discussion: there is no `AsyncBufRead` impl on the sockets themselves: a
//! socket has no user-space buffer to lend out, and giving every stream one
//! would cost memory on every connection that never needs it.
//! `futures::io::BufReader::new(stream)` is the `AsyncBufRead` of a trapline
//! stream (`lines`, `read_line`, `read_until`, `fill_buf`), and the tests run
//! it over TCP and Unix streams.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::{OwnedReadHalf, OwnedWriteHalf, TcpStream, UnixStream};

macro_rules! async_io_for {
    ($($ty:ty),*) => {$(
        impl AsyncRead for $ty {
            #[track_caller]
    fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                (*self).poll_read(cx, buf)
            }
        }

        impl AsyncWrite for $ty {
            #[track_caller]
    fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                (*self).poll_write(cx, buf)
            }

            #[track_caller]
    fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                (*self).poll_write_vectored(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(close(self.shutdown(Shutdown::Write)))
            }
        }
    )*};
}

async_io_for!(TcpStream, &TcpStream, UnixStream, &UnixStream);

/// A close of a stream whose peer is already gone is done, not an error.
fn close(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

impl AsyncRead for OwnedReadHalf {
    #[track_caller]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    #[track_caller]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    #[track_caller]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(close(self.stream().shutdown(Shutdown::Write)))
    }
}
