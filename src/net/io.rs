//! The one I/O leaf: try the syscall, trap on `WouldBlock`.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use trapline_traps::{Leaf, Trap};

/// A stream whose reads and writes are [`Io`] leaves reporting a given line:
/// what [`write_all`] and [`read_exact`] loop over, for every stream type.
pub(crate) trait LeafIo {
    /// One read: some bytes, 0 at the end of the stream, or an error.
    fn read_at<'a>(
        &'a self,
        buf: &'a mut [u8],
        location: &'static Location<'static>,
    ) -> impl Future<Output = io::Result<usize>> + 'a;

    /// One write: how many bytes went.
    fn write_at<'a>(
        &'a self,
        buf: &'a [u8],
        location: &'static Location<'static>,
    ) -> impl Future<Output = io::Result<usize>> + 'a;
}

/// Writes all of `buf` to `stream`; `WriteZero` if a write takes nothing.
pub(crate) async fn write_all<S: LeafIo>(
    stream: &S,
    buf: &[u8],
    location: &'static Location<'static>,
) -> io::Result<()> {
    let mut rest = buf;
    while !rest.is_empty() {
        match stream.write_at(rest, location).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => rest = &rest[n..],
        }
    }
    Ok(())
}

/// Fills `buf` from `stream`; `UnexpectedEof` if the stream ends first.
pub(crate) async fn read_exact<S: LeafIo>(
    stream: &S,
    buf: &mut [u8],
    location: &'static Location<'static>,
) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read_at(&mut buf[filled..], location).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => filled += n,
        }
    }
    Ok(())
}

/// Which way an operation waits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    Read,
    Write,
}

/// A leaf that runs `op` until it does not block.
///
/// Discussion: the kernel's registration is edge-triggered, so a leaf may
/// trap only after it has seen `WouldBlock` with its own eyes: that syscall is
/// what guarantees a fresh edge when the fd becomes ready. `Io` therefore
/// always calls `op` before it traps, on the first poll and on every poll
/// after, spurious or not. (Skipping the `EAGAIN` read after a short read was
/// tried and withdrawn: see the README's performance section.)
pub(crate) struct Io<F> {
    fd: RawFd,
    wait: Wait,
    op: F,
    leaf: Leaf,
}

impl<F> Io<F> {
    pub(crate) fn new(fd: RawFd, wait: Wait, location: &'static Location<'static>, op: F) -> Io<F> {
        Io {
            fd,
            wait,
            op,
            leaf: Leaf::at(location),
        }
    }

    fn trap(&mut self, cx: &Context<'_>) -> Result<(), trapline_traps::TrapError> {
        let trap = match self.wait {
            Wait::Read => Trap::ReadWait { fd: self.fd },
            Wait::Write => Trap::WriteWait { fd: self.fd },
        };
        self.leaf.trap(cx, trap)
    }
}

impl<T, F: FnMut() -> io::Result<T> + Unpin> Future for Io<F> {
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let this = self.get_mut();
        loop {
            match (this.op)() {
                Ok(v) => {
                    this.leaf.done();
                    return Poll::Ready(Ok(v));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return match this.trap(cx) {
                        Ok(()) => Poll::Pending,
                        Err(e) => Poll::Ready(Err(e.into())),
                    };
                }
                // A signal interrupted the syscall: nothing happened, try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    this.leaf.done();
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}
