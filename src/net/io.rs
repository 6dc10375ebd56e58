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
