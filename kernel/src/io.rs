//! The fd table: one registration per fd, one reader seat and one writer seat.
//!
//! Each fd is registered with mio once, for both directions, edge-triggered,
//! the first time a leaf waits on it, and stays registered until `IoRelease`.
//! Edge-triggered readiness is safe only because every leaf tries its syscall
//! before it traps: a leaf that saw `WouldBlock` is guaranteed a new edge when
//! the fd becomes ready again.
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
}

/// The direction of a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
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
        let at = usize::try_from(fd).map_err(|_| TrapError::Os(EBADF))?;
        let registered = self.fds.get(at).is_some_and(|e| e.serial != 0);
        if !registered {
            // Register before growing the table: a bogus fd number is refused
            // here (EBADF) instead of sizing the table after it.
            let serial = self.next_serial.wrapping_add(1).max(1);
            let token = Token(at | (serial as usize) << 32);
            let both = Interest::READABLE | Interest::WRITABLE;
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
        let entry = &mut self.fds[at];
        let seat = match dir {
            Dir::Read => &mut entry.reader,
            Dir::Write => &mut entry.writer,
        };
        match seat {
            Some(other) if *other != waiter => Err(TrapError::ResourceBusy),
            _ => {
                *seat = Some(waiter);
                Ok(())
            }
        }
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
        entry.serial = 0;
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

    /// The waiters an event for `token` fires: `[reader, writer]`.
    pub(crate) fn event(&mut self, token: Token, read: bool, write: bool) -> [Option<Waiter>; 2] {
        let (at, serial) = (token.0 & 0xFFFF_FFFF, (token.0 >> 32) as u32);
        match self.fds.get_mut(at) {
            Some(entry) if entry.serial == serial => [
                if read { entry.reader.take() } else { None },
                if write { entry.writer.take() } else { None },
            ],
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
        Waiter {
            task: TaskId::new(0, 1),
            seq,
        }
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
        assert_eq!(table.event(old, true, true), [None, None]);
        let new = Token(fd as usize | (table.next_serial as usize) << 32);
        assert_eq!(table.event(new, true, true), [Some(waiter(2)), None]);
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
