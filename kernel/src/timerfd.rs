//! Sub-millisecond deadlines: a `timerfd` registered with mio.
//!
//! `epoll_wait` takes its timeout in whole milliseconds, and mio rounds up, so
//! a loop that sleeps through its poll timeout wakes a sleep of 100 µs about
//! a millisecond late. Instead, when the loop is about to block and a deadline
//! is ahead, it arms a `timerfd` (a kernel timer with nanosecond resolution,
//! readable when it expires) for that deadline and blocks with no timeout:
//! the timerfd's readiness ends the wait on time.
//!
//! Principles:
//!
//! - **Arm only what changed.** The timer is set only when the loop blocks
//!   and the earliest deadline differs from the one already armed, so a busy
//!   loop, or a loop with no timers, makes no extra syscall.
//! - **Early is harmless.** A timer armed for a deadline that went stale (its
//!   sleep was cancelled) still fires: the pass finds nothing due and the
//!   loop blocks again. Readiness carries no value, here as for fds.
//! - **Never worse than before.** If the timerfd cannot be made or armed,
//!   the loop falls back to mio's millisecond timeout.
//!
//! Discussion: waking a thread blocked in `epoll_wait` takes tens of
//! microseconds on a virtual machine (the idle vCPU must be scheduled again),
//! and longer the longer it was idle: measured here at 25-45 µs p50 after a
//! 100 µs wait, and 50-70 µs p50 and 100-190 µs p99 after a 1 ms wait (the
//! bare `timerfd` loop of `benches/resources.rs`, run-queue waits taken out). So
//! the timer is armed a *spin* before the deadline, and the loop spends the
//! last stretch polling without blocking, still serving I/O and ready tasks.
//! More than half the wakes after 1 ms of idling took longer than a fixed
//! 50 µs spin, so the spin **learns** the wake delay instead ([`Spin`]):
//! each time the timer ends a blocking wait, the loop sees how long after
//! the timer's expiry it runs again, and the spin follows the upper edge of
//! those delays (up at once, down slowly), between [`Spin::MIN`] (20 µs) and
//! [`Spin::MAX`] (100 µs).
//!
//! The spin never takes more than half of the wait left when the timer is
//! armed. That bounds its CPU: at most 100 µs of polling per timer wake, and
//! a loop of sleeps keeps its thread on the CPU about half the time at most
//! (measured: 33-44% for `sleep(100 µs)`, 11-13% for `sleep(1 ms)`). It also
//! matters for lateness: a thread that polls through whole sleeps looks like
//! a CPU hog to the scheduler, and on a busy machine a hog is preempted and
//! waits its turn for milliseconds: a version that spun through whole
//! 100 µs sleeps was, in two of four runs on a busy machine, 2.5 and 4.0 ms
//! late at p99 where the bare loop with a 50 µs spin was 94 and 104 µs late
//! in the same runs. A thread that is late because another process holds
//! its CPU is late however long the spin: the spin covers the wake, not the
//! machine's load.
//!
//! The timer runs on `CLOCK_MONOTONIC`, the clock behind
//! `Instant`, and is armed with a *relative* time computed from the real
//! `Instant::now()`. A deadline on any other clock (a virtual one, in tests)
//! must not be handed to it: it would fire at the wrong real time.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use log::trace;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// How long before a deadline the timer fires, learned from how late the
/// timer's wakes are; the loop spins on `epoll_wait(0)` for the rest (see
/// Discussion above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spin {
    /// The upper edge of recent wake delays.
    edge: Duration,
}

impl Spin {
    /// The shortest spin, whatever the wakes say.
    pub(crate) const MIN: Duration = Duration::from_micros(20);
    /// The longest spin: the bound on the CPU a timer wake may cost.
    pub(crate) const MAX: Duration = Duration::from_micros(100);
    /// Where the spin starts, before any wake was seen.
    pub(crate) const START: Duration = Duration::from_micros(50);

    pub(crate) fn new() -> Spin {
        Spin { edge: Spin::START }
    }

    /// How long before a deadline to arm the timer.
    pub(crate) fn get(self) -> Duration {
        self.edge.clamp(Spin::MIN, Spin::MAX)
    }

    /// A blocking wait was ended by the timer `delay` after its expiry. A
    /// longer delay than the spin raises the spin to it at once (so the next
    /// wake like it is on time); a shorter one lowers it by a thirty-second
    /// of the difference, so the spin sits at the upper edge of the recent
    /// delays rather than their middle.
    pub(crate) fn learn(&mut self, delay: Duration) {
        let edge = self.edge.clamp(Spin::MIN, Spin::MAX);
        self.edge = if delay > edge {
            delay.min(Spin::MAX)
        } else {
            edge - (edge - delay) / 32
        };
    }
}

/// The token of the kernel's deadline timer.
pub(crate) const TIMER: Token = Token(usize::MAX - 1);

/// A timerfd, registered with the kernel's poller under [`TIMER`].
#[derive(Debug)]
pub(crate) struct DeadlineTimer {
    fd: OwnedFd,
    /// The deadline the timer is armed for, if any, and when the timer
    /// expires (a spin earlier).
    armed: Option<(Instant, Instant)>,
    /// The deadline of the last expiry: the loop spins until it is due.
    fired_for: Option<Instant>,
    spin: Spin,
}

impl DeadlineTimer {
    /// A disarmed timer, registered with `registry`.
    pub(crate) fn new(registry: &Registry) -> io::Result<DeadlineTimer> {
        // SAFETY: timerfd_create takes no pointers; the result is checked.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        registry.register(&mut SourceFd(&fd.as_raw_fd()), TIMER, Interest::READABLE)?;
        Ok(DeadlineTimer {
            fd,
            armed: None,
            fired_for: None,
            spin: Spin::new(),
        })
    }

    /// How long the poll may block to wake at `deadline` (seen at `now`):
    /// no timeout when the timer is armed for it, zero when it is due.
    /// `None` deadline: block until an event (a timer armed for a deadline
    /// that went away only makes a spurious wake).
    pub(crate) fn poll_timeout(
        &mut self,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Option<Duration> {
        let at = deadline?;
        let left = at.saturating_duration_since(now);
        if left <= Spin::MIN || self.fired_for == Some(at) {
            // Due, so close that waking from a blocked wait would overshoot
            // it, or the timer armed for it fired: poll without blocking
            // until it is due.
            return Some(Duration::ZERO);
        }
        if self.armed.is_some_and(|(armed, _)| armed == at) {
            return None;
        }
        // Never spin through more than half of the wait: a loop of short
        // sleeps burns at most about half a CPU, and a thread that burns
        // less is preempted less by other load.
        let spin = self.spin.get().min(left / 2);
        match self.arm(left - spin) {
            Ok(()) => {
                self.armed = Some((at, at - spin));
                None
            }
            // Could not arm: mio's millisecond timeout, rounded up.
            Err(_) => Some(left),
        }
    }

    /// The timer expired: consume the expiry, so the next one is a new edge.
    /// `blocked`: the poll that saw it was a blocking wait, so how late it
    /// runs now is the wake's delay, which the spin learns from. (A poll
    /// that did not block says only how busy the loop was.)
    pub(crate) fn fired(&mut self, blocked: bool) {
        let mut ticks = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `ticks`, which has 8. A failure
        // (EAGAIN: a spurious event) leaves nothing to consume.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), ticks.as_mut_ptr().cast(), 8) };
        // Only a real expiry starts the spin: a spurious event must not make
        // the loop poll all the way to a far deadline.
        let expired = n == 8;
        self.fired_for = self.armed.map(|(at, _)| at).filter(|_| expired);
        if let (true, true, Some((_, expiry))) = (blocked, expired, self.armed) {
            let delay = Instant::now().saturating_duration_since(expiry);
            self.spin.learn(delay);
            trace!(target: "trapline::kernel", "timer woke the loop {delay:?} after its expiry; spin now {:?}", self.spin.get());
        }
        self.armed = None;
    }

    fn arm(&self, left: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` lives across the call; the old value is not asked for.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deadline 200 µs past the spin ends a poll with no timeout, through the timer's
    /// own event; the same deadline is armed once.
    #[test]
    fn wakes_a_blocking_poll_at_its_deadline() {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(8);
        let mut timer = DeadlineTimer::new(poll.registry()).unwrap();
        let now = Instant::now();
        let spin = timer.spin.get();
        let at = now + spin + Duration::from_micros(200);
        assert_eq!(
            timer.poll_timeout(Some(at), now),
            None,
            "armed: no poll timeout"
        );
        assert_eq!(timer.armed, Some((at, at - spin)));
        assert_eq!(timer.poll_timeout(Some(at), now), None, "already armed");
        poll.poll(&mut events, None).unwrap();
        let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
        assert_eq!(tokens, [TIMER]);
        assert!(
            Instant::now() + spin >= at,
            "not before its deadline, less the spin"
        );
        timer.fired(true);
        assert_eq!(timer.armed, None);
        assert!(
            (Spin::MIN..=Spin::MAX).contains(&timer.spin.get()),
            "the spin learned from the wake, within its bounds"
        );
    }

    /// A due deadline, or one within the spin, polls without blocking; no
    /// deadline blocks for events.
    #[test]
    fn due_and_absent_deadlines() {
        let poll = mio::Poll::new().unwrap();
        let mut timer = DeadlineTimer::new(poll.registry()).unwrap();
        let now = Instant::now();
        assert_eq!(timer.poll_timeout(Some(now), now), Some(Duration::ZERO));
        assert_eq!(
            timer.poll_timeout(Some(now + Spin::MIN), now),
            Some(Duration::ZERO)
        );
        assert_eq!(timer.poll_timeout(None, now), None);
        assert_eq!(timer.armed, None, "nothing was armed");
    }

    /// A wake later than the spin raises it to that delay at once, never
    /// past the bound; on-time wakes lower it a thirty-second of the
    /// difference each, never under the floor.
    #[test]
    fn spin_follows_the_upper_edge_of_wake_delays() {
        let us = Duration::from_micros;
        let mut spin = Spin::new();
        assert_eq!(spin.get(), us(50));
        spin.learn(us(90));
        assert_eq!(spin.get(), us(90), "up at once");
        spin.learn(us(58));
        assert_eq!(spin.get(), us(89), "down by (90 - 58) / 32");
        spin.learn(Duration::from_millis(9));
        assert_eq!(
            spin.get(),
            Spin::MAX,
            "a preempted wake costs at most the bound"
        );
        for _ in 0..1000 {
            spin.learn(us(1));
        }
        assert_eq!(spin.get(), Spin::MIN, "fast wakes bring it to the floor");
    }

    /// A timer event seen by a poll that did not block (the loop was busy)
    /// teaches the spin nothing.
    #[test]
    fn a_busy_loop_teaches_nothing() {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(8);
        let mut timer = DeadlineTimer::new(poll.registry()).unwrap();
        let now = Instant::now();
        let at = now + Spin::START + Duration::from_micros(100);
        assert_eq!(timer.poll_timeout(Some(at), now), None);
        poll.poll(&mut events, None).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        timer.fired(false);
        assert_eq!(timer.spin.get(), Spin::START);
        assert_eq!(timer.armed, None);
    }

    /// A wait shorter than twice the learned spin is armed halfway, not
    /// spun through; once that expiry fired, the loop polls without
    /// blocking until the deadline, and a new deadline is armed afresh.
    #[test]
    fn never_spins_through_more_than_half_a_wait() {
        let us = Duration::from_micros;
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(8);
        let mut timer = DeadlineTimer::new(poll.registry()).unwrap();
        timer.spin.learn(us(200));
        assert_eq!(timer.spin.get(), Spin::MAX);
        let now = Instant::now();
        let at = now + us(80);
        assert_eq!(timer.poll_timeout(Some(at), now), None, "armed, blocks");
        assert_eq!(timer.armed, Some((at, at - us(40))), "halfway");
        poll.poll(&mut events, None).unwrap();
        timer.fired(false);
        assert_eq!(timer.armed, None);
        assert_eq!(
            timer.poll_timeout(Some(at), now + us(60)),
            Some(Duration::ZERO),
            "in its spin: polls without blocking"
        );
        let later = at + us(1000);
        assert_eq!(timer.poll_timeout(Some(later), at), None);
        assert_eq!(
            timer.armed,
            Some((later, later - Spin::MAX)),
            "the learned spin"
        );
    }

    /// A timer event with no expiry behind it (a stale edge) neither starts
    /// the spin nor teaches it: the deadline is armed again and the loop
    /// blocks, rather than polling for a second until it is due.
    #[test]
    fn a_spurious_event_does_not_start_the_spin() {
        let poll = mio::Poll::new().unwrap();
        let mut timer = DeadlineTimer::new(poll.registry()).unwrap();
        let now = Instant::now();
        let at = now + Duration::from_secs(1);
        assert_eq!(timer.poll_timeout(Some(at), now), None);
        timer.fired(true);
        assert_eq!(timer.fired_for, None);
        assert_eq!(timer.spin.get(), Spin::START);
        assert_eq!(timer.poll_timeout(Some(at), now), None, "armed again");
        assert!(timer.armed.is_some());
    }
}
