//! The one I/O leaf: try the syscall, trap on `WouldBlock`.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
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

/// What a TCP stream remembers of its reads: whether the last one came back
/// short while no other read of the stream was waiting, and how many of its
/// read leaves wait now.
///
/// A short read (some bytes, fewer than asked) of a TCP socket emptied its
/// receive queue, so the next read may trap `ReadDrained` without trying
/// (see [`Io`]) — unless another read leaf of the stream was waiting then:
/// an edge that wakes *that* leaf is spent on it, and if it is dropped
/// unread, nothing is left to wake the next one. Every read that takes
/// bytes notes how it went; a peek forgets it (the bytes stay).
///
/// Not for Unix streams: their reads also stop short at passed fds or at
/// another writer's credentials, with bytes still queued.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    short: Cell<bool>,
    /// Read leaves of the stream parked now (they trapped and have not been
    /// polled again or dropped since).
    parked: Cell<u32>,
}

impl Drained {
    /// Notes how a read of `asked` bytes went. `alone`: no poll-style read
    /// of the stream is parked either.
    pub(crate) fn note(&self, read: &io::Result<usize>, asked: usize, alone: bool) {
        let short = matches!(*read, Ok(n) if n > 0 && n < asked);
        self.short.set(short && alone && self.parked.get() == 0);
    }

    /// The next read must try first.
    pub(crate) fn forget(&self) {
        self.short.set(false);
    }
}

/// What an [`Io`] leaf tells its stream, and asks it.
pub(crate) trait Hint {
    /// Asked once, at the leaf's first poll: may it trap `ReadDrained`
    /// without calling `op`? The answer is spent.
    fn take_untried(&self) -> bool;
    /// The leaf parked (`true`), or is no longer parked (`false`): polled
    /// again, or dropped.
    fn parked(&self, parked: bool);
}

/// Always try first: every write, every read of a socket that is not a
/// TCP stream.
pub(crate) struct TryFirst;

impl Hint for TryFirst {
    fn take_untried(&self) -> bool {
        false
    }

    fn parked(&self, _: bool) {}
}

impl Hint for Drained {
    fn take_untried(&self) -> bool {
        self.short.replace(false)
    }

    fn parked(&self, parked: bool) {
        let n = self.parked.get();
        self.parked.set(if parked { n + 1 } else { n - 1 });
    }
}

impl<H: Hint> Hint for &H {
    fn take_untried(&self) -> bool {
        (**self).take_untried()
    }

    fn parked(&self, parked: bool) {
        (**self).parked(parked)
    }
}

/// A leaf that runs `op` until it does not block.
///
/// Discussion: the kernel's registration is edge-triggered, so a leaf may
/// wait only once it knows the fd is drained: that is what guarantees a
/// fresh edge when the fd becomes ready. Usually it knows because it has
/// seen `WouldBlock` with its own eyes, so `Io` calls `op` before it traps
/// `ReadWait`/`WriteWait`, on the first poll and on every poll after,
/// spurious or not. The one exception is a stream's read whose previous read
/// came back short (its [`Drained`] hint): its first poll traps
/// `ReadDrained` without trying, which saves the `EAGAIN` syscall of every
/// echoed message; the kernel keeps an edge that arrives before that trap
/// (see the kernel's fd table). The hint is spent by that first poll, so
/// every later poll tries, and so does the next read if this one is dropped
/// after an edge woke it (the edge is spent, the bytes are still there); a
/// short read made while another read leaf waits sets no hint, for the same
/// reason.
///
/// `op` is handed the hint: a stream's read reaches its stream through it
/// rather than holding a reference of its own, one word less in every
/// pending read (a connection waiting in `read` holds one for as long as
/// it is idle).
pub(crate) struct Io<F, H: Hint = TryFirst> {
    fd: RawFd,
    wait: Wait,
    op: F,
    leaf: Leaf,
    hint: H,
    /// Polled at least once.
    polled: bool,
    /// Parked, as the hint was told.
    parked: bool,
}

impl Io<()> {
    /// A leaf whose `op` always runs first.
    pub(crate) fn new<T>(
        fd: RawFd,
        wait: Wait,
        location: &'static Location<'static>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Io<impl FnMut(&TryFirst) -> io::Result<T>> {
        Io::hinted(fd, wait, location, move |_: &TryFirst| op(), TryFirst)
    }
}

impl<'a, F, S: Hint + AsRawFd> Io<F, &'a S> {
    /// A stream's read (or peek), the stream its own hint (a TCP stream:
    /// its [`Drained`]): the first poll skips the syscall if the hint says
    /// the last read came back short; `op` is handed `stream` and must
    /// [`Drained::note`] what it read.
    pub(crate) fn stream_read<T>(
        location: &'static Location<'static>,
        stream: &'a S,
        op: F,
    ) -> Io<F, &'a S>
    where
        F: FnMut(&&'a S) -> io::Result<T>,
    {
        Io::hinted(stream.as_raw_fd(), Wait::Read, location, op, stream)
    }
}

impl<F, H: Hint> Io<F, H> {
    fn hinted(
        fd: RawFd,
        wait: Wait,
        location: &'static Location<'static>,
        op: F,
        hint: H,
    ) -> Io<F, H> {
        Io {
            fd,
            wait,
            op,
            leaf: Leaf::at(location),
            hint,
            polled: false,
            parked: false,
        }
    }

    /// Posts `trap`: `Pending` if the leaf now waits, the kernel's refusal
    /// (an interrupt, `ResourceBusy`, …) otherwise.
    fn wait_on<T>(&mut self, cx: &Context<'_>, trap: Trap) -> Poll<io::Result<T>> {
        match self.leaf.trap(cx, trap) {
            Ok(()) => {
                self.hint.parked(true);
                self.parked = true;
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }
}

impl<T, F: FnMut(&H) -> io::Result<T> + Unpin, H: Hint + Unpin> Future for Io<F, H> {
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let this = self.get_mut();
        if std::mem::take(&mut this.parked) {
            this.hint.parked(false);
        }
        let first = !std::mem::replace(&mut this.polled, true);
        // A `ReadDrained` the kernel refuses (an interrupt, `ResourceBusy`)
        // is not the answer yet: a leaf that can still make progress
        // completes normally, so the syscall is tried before it fails.
        let mut refused = None;
        if first && this.hint.take_untried() {
            match this.wait_on(cx, Trap::ReadDrained { fd: this.fd }) {
                Poll::Ready(Err(e)) => refused = Some(e),
                waiting => return waiting,
            }
        }
        loop {
            match (this.op)(&this.hint) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(e) = refused {
                        return Poll::Ready(Err(e));
                    }
                    let trap = match this.wait {
                        Wait::Read => Trap::ReadWait { fd: this.fd },
                        Wait::Write => Trap::WriteWait { fd: this.fd },
                    };
                    return this.wait_on(cx, trap);
                }
                // A signal interrupted the syscall: nothing happened, try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => {
                    this.leaf.done();
                    return Poll::Ready(done);
                }
            }
        }
    }
}

impl<F, H: Hint> Drop for Io<F, H> {
    fn drop(&mut self) {
        if self.parked {
            self.hint.parked(false);
        }
    }
}
