//! The one I/O leaf: try the syscall, trap on `WouldBlock`.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use trapline_traps::{Leaf, Trap};

/// Which way an operation waits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    Read,
    Write,
}

/// A leaf that runs `op` until it does not block.
///
/// Discussion: the kernel's registration is edge-triggered, so a leaf may
/// trap only once it knows the fd is drained: that is what guarantees a fresh
/// edge when the fd becomes ready. Usually it knows because it has seen
/// `WouldBlock` with its own eyes, so `Io` calls `op` before it traps, on the
/// first poll and on every poll after, spurious or not. The one exception is
/// [`Io::drained`]: a read whose previous read on the same stream came back
/// short (the receive queue was emptied) traps on its first poll without
/// trying, saving the `EAGAIN` syscall; the kernel keeps an edge that arrives
/// before the trap for it (a per-fd readiness bit), so nothing is lost.
pub(crate) struct Io<F> {
    fd: RawFd,
    wait: Wait,
    op: F,
    leaf: Leaf,
    /// Trap on the first poll without calling `op`.
    trap_first: bool,
}

impl<F> Io<F> {
    pub(crate) fn new(fd: RawFd, wait: Wait, location: &'static Location<'static>, op: F) -> Io<F> {
        Io {
            fd,
            wait,
            op,
            leaf: Leaf::at(location),
            trap_first: false,
        }
    }

    /// Marks the fd as known drained: the first poll traps without trying.
    pub(crate) fn drained(mut self, drained: bool) -> Io<F> {
        self.trap_first = drained;
        self
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
        if std::mem::take(&mut this.trap_first) {
            return match this.trap(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e.into())),
            };
        }
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
