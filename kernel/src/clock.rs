//! The kernel's clock: real, or virtual.
//!
//! Every deadline the kernel keeps — a sleep, a timeout, the shutdown grace —
//! is compared with this clock, never with `Instant::now()` directly, and the
//! `Clock` trap answers with it, so leaves see the same time the kernel does.
//!
//! A **real** clock is `Instant::now()`: the kernel waits in `epoll_wait`
//! until the next deadline.
//!
//! A **virtual** clock starts at the real time the kernel was built and moves
//! only when the kernel has nothing to do: no task ready, no wake queued, and
//! a zero-timeout look at mio found no event. Then, instead of sleeping, the
//! kernel sets the clock to the next deadline and fires it. An hour of nested
//! timeouts runs in as long as the polls take, and always in the same order.
//! Time never moves while a task runs: code between two traps takes no time
//! at all.
//!
//! Discussion: the virtual clock does not wait for I/O that is still in
//! flight. If a task waits on a socket and another task sleeps, and the
//! socket's event has not arrived when the kernel looks, the clock jumps to
//! the sleep's deadline. On loopback inside one kernel this does not happen
//! (a write is in the peer's receive buffer, and its event in epoll, when
//! `write` returns), but bytes from another thread or process can arrive
//! "late" by any amount of virtual time. Use it for programs whose outside
//! inputs are immediate, or whose deadlines are long next to them. When no
//! deadline is left at all, the kernel blocks in `epoll_wait` as a real one
//! does: a kernel whose tasks wait only on I/O or on each other never spins.

use std::time::Instant;

/// Where the time comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    /// The system's monotonic clock.
    Real,
    /// A clock that moves only when told to.
    Virtual { now: Instant },
}

impl Clock {
    /// A virtual clock, reading the real time now.
    pub(crate) fn new_virtual() -> Clock {
        Clock::Virtual {
            now: Instant::now(),
        }
    }

    /// The time now.
    pub(crate) fn now(&self) -> Instant {
        match *self {
            Clock::Real => Instant::now(),
            Clock::Virtual { now } => now,
        }
    }

    /// Whether the clock is virtual.
    pub(crate) fn is_virtual(&self) -> bool {
        matches!(self, Clock::Virtual { .. })
    }

    /// Moves a virtual clock forward to `at` (never back); a real clock moves
    /// by itself.
    pub(crate) fn advance_to(&mut self, at: Instant) {
        if let Clock::Virtual { now } = self {
            if at > *now {
                *now = at;
                trapline_traps::show_times_against(Some(at));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A virtual clock stands still until advanced, and never goes back.
    #[test]
    fn virtual_clock_moves_only_forward_when_told() {
        let mut clock = Clock::new_virtual();
        let t0 = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now(), t0);
        clock.advance_to(t0 + Duration::from_secs(3600));
        assert_eq!(clock.now(), t0 + Duration::from_secs(3600));
        clock.advance_to(t0);
        assert_eq!(clock.now(), t0 + Duration::from_secs(3600));
        trapline_traps::show_times_against(None);
    }

    /// A real clock follows the system's.
    #[test]
    fn real_clock_follows_the_system() {
        let mut clock = Clock::Real;
        let before = Instant::now();
        clock.advance_to(before + Duration::from_secs(3600));
        let now = clock.now();
        assert!(now >= before && now < before + Duration::from_secs(3600));
    }
}
