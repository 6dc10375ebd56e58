//! The fd table: one registration per fd, one reader seat and one writer seat.
//!
//! Each fd is registered with mio once, for both directions, edge-triggered,
//! the first time a leaf waits on it, and stays registered until `IoRelease`.
//! Edge-triggered readiness is safe only because every leaf tries its syscall
//! before it traps: a leaf that saw `WouldBlock` is guaranteed a new edge when
//! the fd becomes ready again.
//!
//! Discussion: one kind of read may trap *without* trying, `ReadDrained`:
//! a stream read whose previous read came back short (fewer bytes than
//! asked) knows the receive queue was empty then, so the `EAGAIN` read in
//! between would be a wasted syscall (tokio skips it the same way). Bytes
//! arriving after that short read make a new edge, but the edge may reach the
//! kernel before the leaf's trap does, while nobody sits in the seat. So the
//! table remembers, per fd, that a read edge found the seat empty
//! (`read_edge`), and that the fd reported something a short read can leave
//! behind (`sticky`, kept for good): its end or an error (a short read can
//! return the last bytes with the peer's FIN already queued behind them,
//! announced by an edge that woke the reader before that read), or urgent
//! data (`EPOLLPRI`: a TCP read stops short at the urgent mark with bytes
//! queued after it). A `ReadDrained` that finds either bit is resumed at
//! once, to try. Only `ReadDrained` looks at the bits, and it follows a read
//! that made progress, so they can cost a spurious resume but never a spin;
//! a `ReadWait` (the leaf saw `EAGAIN` itself) spends a stale edge bit.
//!
//! Tokens carry the fd and a registration serial, so an event that was in
//! flight when an fd was released and its number reused is recognised as stale.

use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use trapline_traps::TrapError;

use crate::task::Waiter;

/// The token of the kernel's cross-thread bell.
pub(crate) const BELL: Token = Token(usize::MAX);

#[derive(Debug, Default)]
struct Entry {
    /// 0 when not registered.
    serial: u32,
    reader: Option<Waiter>,
    writer: Option<Waiter>,
    /// A read edge came while nobody sat in the reader seat.
    read_edge: bool,
    /// The fd reported its end, an error or urgent data: from now on a
    /// `ReadDrained` is resumed at once.
    sticky: bool,
}

impl Entry {
    /// Takes the seat in direction `dir`, unless another waiter holds it.
    fn sit(&mut self, dir: Dir, waiter: Waiter) -> Result<(), TrapError> {
        let seat = match dir {
            Dir::Read => &mut self.reader,
            Dir::Write => &mut self.writer,
        };
        match seat {
            Some(other) if *other != waiter => Err(TrapError::ResourceBusy),
            _ => {
                *seat = Some(waiter);
                Ok(())
            }
        }
    }
}

/// The direction of a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// What an event says about an fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ready {
    /// Readable, read-closed or failed: wakes the reader.
    pub read: bool,
    /// Writable, write-closed or failed: wakes the writer.
    pub write: bool,
    /// Read-closed, failed, or urgent data: a short read may leave bytes
    /// (or the end) behind with no edge to come for them.
    pub sticky: bool,
}

impl Ready {
    /// What a mio event says.
    pub(crate) fn of(event: &mio::event::Event) -> Ready {
        let failed = event.is_error();
        let urgent = event.is_priority();
        Ready {
            read: event.is_readable() || event.is_read_closed() || failed || urgent,
            write: event.is_writable() || event.is_write_closed() || failed,
            sticky: event.is_read_closed() || failed || urgent,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct IoTable {
    fds: Vec<Entry>,
    registered: usize,
    next_serial: u32,
}

fn os_error(err: io::Error) -> TrapError {
    TrapError::Os(err.raw_os_error().unwrap_or(libc_einval()))
}

const fn libc_einval() -> i32 {
    22
}

const EBADF: i32 = 9;

impl IoTable {
    /// How many fds are registered with the poller.
    pub(crate) fn registered(&self) -> usize {
        self.registered
    }

    /// Seats `waiter` as `fd`'s reader or writer, registering the fd if needed.
    pub(crate) fn wait(
        &mut self,
        registry: &Registry,
        fd: RawFd,
        dir: Dir,
        waiter: Waiter,
    ) -> Result<(), TrapError> {
        let entry = self.entry(registry, fd)?;
        if dir == Dir::Read {
            // The leaf saw `EAGAIN` after every edge heard so far.
            entry.read_edge = false;
        }
        entry.sit(dir, waiter)
    }

    /// Seats `waiter` as `fd`'s reader for a `ReadDrained` (a read that did
    /// not try). `Ok(false)`: the fd became readable since the kernel last
    /// woke a reader there, or once ended, failed or got urgent data; the
    /// waiter is not seated but is to be resumed at once, to try.
    pub(crate) fn wait_untried(
        &mut self,
        registry: &Registry,
        fd: RawFd,
        waiter: Waiter,
    ) -> Result<bool, TrapError> {
        let entry = self.entry(registry, fd)?;
        if matches!(entry.reader, Some(other) if other != waiter) {
            return Err(TrapError::ResourceBusy);
        }
        if entry.sticky || std::mem::take(&mut entry.read_edge) {
            return Ok(false);
        }
        entry.sit(Dir::Read, waiter).map(|()| true)
    }

    /// `fd`'s entry, registering the fd with the poller if it is not yet.
    fn entry(&mut self, registry: &Registry, fd: RawFd) -> Result<&mut Entry, TrapError> {
        let at = usize::try_from(fd).map_err(|_| TrapError::Os(EBADF))?;
        let registered = self.fds.get(at).is_some_and(|e| e.serial != 0);
        if !registered {
            // Register before growing the table: a bogus fd number is refused
            // here (EBADF) instead of sizing the table after it.
            let serial = self.next_serial.wrapping_add(1).max(1);
            let token = Token(at | (serial as usize) << 32);
            // `PRIORITY` for urgent data: it ends a read short (see `sticky`).
            let both = Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
            registry
                .register(&mut SourceFd(&fd), token, both)
                .map_err(os_error)?;
            self.next_serial = serial;
            if at >= self.fds.len() {
                self.fds.resize_with(at + 1, Entry::default);
            }
            self.fds[at].serial = serial;
            self.registered += 1;
        }
        Ok(&mut self.fds[at])
    }

    /// Empties `fd`'s seat in direction `dir` if `waiter` holds it.
    pub(crate) fn leave(&mut self, fd: RawFd, dir: Dir, waiter: Waiter) {
        let Some(entry) = usize::try_from(fd).ok().and_then(|at| self.fds.get_mut(at)) else {
            return;
        };
        let seat = match dir {
            Dir::Read => &mut entry.reader,
            Dir::Write => &mut entry.writer,
        };
        if *seat == Some(waiter) {
            *seat = None;
        }
    }

    /// Deregisters `fd` and returns whoever still sat on it.
    pub(crate) fn release(&mut self, registry: &Registry, fd: RawFd) -> [Option<Waiter>; 2] {
        let Some(entry) = usize::try_from(fd).ok().and_then(|at| self.fds.get_mut(at)) else {
            return [None, None];
        };
        if entry.serial != 0 {
            // The fd is still open (it is closed after this trap), so this
            // succeeds; if it did not, closing the fd drops the registration.
            let _ = registry.deregister(&mut SourceFd(&fd));
            self.registered -= 1;
        }
        let seated = [entry.reader.take(), entry.writer.take()];
        *entry = Entry::default();
        seated
    }

    /// Deregisters every fd still registered; returns how many there were.
    ///
    /// Called when a run ends: a socket that outlives its kernel's run can no
    /// longer tell the kernel when it closes, and a later socket given the
    /// same fd number must not inherit its registration. The fds are still
    /// open (their owners hold them), so deregistering succeeds; a socket
    /// used in a later run registers again.
    pub(crate) fn release_all(&mut self, registry: &Registry) -> usize {
        let mut released = 0;
        for (at, entry) in self.fds.iter_mut().enumerate() {
            if entry.serial != 0 {
                let _ = registry.deregister(&mut SourceFd(&(at as RawFd)));
                *entry = Entry::default();
                released += 1;
            }
        }
        self.registered = 0;
        released
    }

    /// The waiters an event for `token` fires: `[reader, writer]`. A read
    /// edge that finds nobody seated is remembered (`read_edge`), and an end
    /// or an error or urgent data for good (`sticky`), for a `ReadDrained`
    /// to come.
    pub(crate) fn event(&mut self, token: Token, ready: Ready) -> [Option<Waiter>; 2] {
        let (at, serial) = (token.0 & 0xFFFF_FFFF, (token.0 >> 32) as u32);
        match self.fds.get_mut(at) {
            Some(entry) if entry.serial == serial => {
                entry.sticky |= ready.sticky;
                let reader = if ready.read {
                    entry.reader.take()
                } else {
                    None
                };
                if ready.read {
                    entry.read_edge = reader.is_none();
                }
                [
                    reader,
                    if ready.write {
                        entry.writer.take()
                    } else {
                        None
                    },
                ]
            }
            _ => [None, None],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use trapline_traps::TaskId;

    fn waiter(seq: u64) -> Waiter {
        Waiter::new(TaskId::new(0, 1), seq)
    }

    /// An entry is 40 bytes, two seats of 16 and its flags: there is one
    /// per fd number up to the highest registered.
    #[test]
    fn an_entry_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
    }

    /// One reader per fd: the same leaf may sit again, another leaf is refused.
    #[test]
    fn one_reader_per_fd() {
        let poll = mio::Poll::new().unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let mut table = IoTable::default();
        assert_eq!(
            table.wait(poll.registry(), fd, Dir::Read, waiter(1)),
            Ok(())
        );
        assert_eq!(
            table.wait(poll.registry(), fd, Dir::Read, waiter(1)),
            Ok(())
        );
        assert_eq!(
            table.wait(poll.registry(), fd, Dir::Read, waiter(2)),
            Err(TrapError::ResourceBusy)
        );
        assert_eq!(
            table.wait(poll.registry(), fd, Dir::Write, waiter(2)),
            Ok(())
        );
        assert_eq!(table.registered(), 1, "registered once for both directions");
        assert_eq!(
            table.release(poll.registry(), fd),
            [Some(waiter(1)), Some(waiter(2))]
        );
        assert_eq!(table.registered(), 0);
    }

    /// An event whose token names an earlier registration of the same fd
    /// number fires nobody.
    #[test]
    fn stale_token_fires_nobody() {
        let poll = mio::Poll::new().unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let mut table = IoTable::default();
        table
            .wait(poll.registry(), fd, Dir::Read, waiter(1))
            .unwrap();
        let old = Token(fd as usize | (table.next_serial as usize) << 32);
        table.release(poll.registry(), fd);
        table
            .wait(poll.registry(), fd, Dir::Read, waiter(2))
            .unwrap();
        assert_eq!(table.event(old, BOTH), [None, None]);
        let new = Token(fd as usize | (table.next_serial as usize) << 32);
        assert_eq!(table.event(new, BOTH), [Some(waiter(2)), None]);
    }

    const BOTH: Ready = Ready {
        read: true,
        write: true,
        sticky: false,
    };
    const READ: Ready = Ready {
        read: true,
        write: false,
        sticky: false,
    };

    /// A read edge that finds the reader seat empty is kept for the next
    /// `ReadDrained`, which is resumed at once instead of seated, once; a
    /// `ReadWait` (which saw `EAGAIN`) spends it; an edge that wakes a
    /// seated reader leaves nothing behind.
    #[test]
    fn a_read_edge_with_an_empty_seat_is_kept_for_read_drained() {
        let poll = mio::Poll::new().unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let mut table = IoTable::default();
        let reg = poll.registry();
        assert_eq!(
            table.wait_untried(reg, fd, waiter(1)),
            Ok(true),
            "nothing heard: seated"
        );
        let token = Token(fd as usize | (table.next_serial as usize) << 32);
        assert_eq!(table.event(token, BOTH), [Some(waiter(1)), None]);
        assert_eq!(
            table.wait_untried(reg, fd, waiter(2)),
            Ok(true),
            "the edge woke a reader"
        );
        table.leave(fd, Dir::Read, waiter(2));
        assert_eq!(table.event(token, READ), [None, None]);
        assert_eq!(
            table.wait_untried(reg, fd, waiter(3)),
            Ok(false),
            "heard while nobody sat"
        );
        assert_eq!(
            table.wait_untried(reg, fd, waiter(3)),
            Ok(true),
            "spent once"
        );
        table.leave(fd, Dir::Read, waiter(3));
        assert_eq!(table.event(token, READ), [None, None]);
        assert_eq!(table.wait(reg, fd, Dir::Read, waiter(4)), Ok(()));
        table.leave(fd, Dir::Read, waiter(4));
        assert_eq!(
            table.wait_untried(reg, fd, waiter(5)),
            Ok(true),
            "a ReadWait spent it"
        );
        assert_eq!(
            table.wait_untried(reg, fd, waiter(6)),
            Err(TrapError::ResourceBusy),
            "one reader per fd, tried or not"
        );
    }

    /// An end or an error is kept for good: every `ReadDrained` after it is
    /// resumed at once; `ReadWait` and writes park as before; releasing the
    /// fd forgets it.
    #[test]
    fn an_end_resumes_every_read_drained() {
        let poll = mio::Poll::new().unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let mut table = IoTable::default();
        let reg = poll.registry();
        assert_eq!(table.wait_untried(reg, fd, waiter(1)), Ok(true));
        let token = Token(fd as usize | (table.next_serial as usize) << 32);
        let ended = Ready {
            sticky: true,
            ..READ
        };
        assert_eq!(table.event(token, ended), [Some(waiter(1)), None]);
        for _ in 0..3 {
            assert_eq!(table.wait_untried(reg, fd, waiter(2)), Ok(false));
        }
        assert_eq!(table.wait(reg, fd, Dir::Read, waiter(2)), Ok(()));
        assert_eq!(table.wait(reg, fd, Dir::Write, waiter(3)), Ok(()));
        assert_eq!(table.release(reg, fd), [Some(waiter(2)), Some(waiter(3))]);
        assert_eq!(table.wait_untried(reg, fd, waiter(4)), Ok(true));
    }

    /// A number that is no open fd is refused by the poller, and the table
    /// does not grow to its size.
    #[test]
    fn bogus_fd_is_refused() {
        let poll = mio::Poll::new().unwrap();
        let mut table = IoTable::default();
        assert_eq!(
            table.wait(poll.registry(), i32::MAX, Dir::Read, waiter(1)),
            Err(TrapError::Os(EBADF))
        );
        assert_eq!(
            table.wait(poll.registry(), -1, Dir::Read, waiter(1)),
            Err(TrapError::Os(EBADF))
        );
        assert!(table.fds.is_empty());
    }
}
