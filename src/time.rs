//! Time: the clock, sleeping, and timeouts scoped to the future they wrap.
//!
//! A Discussion About Time: a sleep is a `Sleep` trap with a deadline, and the
//! kernel wakes the task when its clock passes it. The kernel waits for
//! events with `epoll_wait`, whose timeout is whole milliseconds rounded up,
//! so a sleep resumes at or after its deadline, up to about a millisecond
//! late.
//!
//! A timeout is not a sleep. `timeout_after(d, f)` arms a deadline for the
//! task and *scopes* it to `f`: while `f` is polled, the timeout's id is in
//! force, and only a leaf polled inside that scope can take `TimedOut(id)`.
//! The leaf that takes it completes with the error, the error travels up `f`
//! as any error would, and `timeout_after` reports the expiry. A leaf that can
//! still make progress when the deadline passes completes normally: expiry
//! is delivered at a trap, never in the middle of work.

use std::future::{poll_fn, Future};
use std::panic::Location;
use std::pin::{pin, Pin};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use trapline_traps::{Leaf, TaskId, TimeoutId, Trap, TrapError};

/// The kernel's clock.
///
/// # Examples
///
/// ```
/// trapline::run(async {
///     let t0 = trapline::clock()?;
///     trapline::sleep(std::time::Duration::from_millis(1)).await?;
///     assert!(trapline::clock()? > t0);
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn clock() -> Result<Instant, TrapError> {
    trapline_traps::clock()
}

/// Far enough to mean "never" without overflowing `Instant`.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn after(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration).unwrap_or_else(|| now + FOREVER)
}

/// Sleeps for `duration`, counted from the first poll.
///
/// A `Sleep` trap: cancellable, and it takes a timeout of an enclosing
/// `timeout_after`. Resolves to `Err(TrapError::Cancelled)` or
/// `Err(TrapError::TimedOut(id))` when interrupted.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// trapline::run(async {
///     trapline::sleep(Duration::from_millis(5)).await
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        state: SleepState::After {
            duration,
            location: Location::caller(),
        },
    }
}

/// Sleeps until the kernel's clock reaches `deadline`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// trapline::run(async {
///     let at = trapline::clock()? + Duration::from_millis(5);
///     trapline::sleep_until(at).await?;
///     assert!(trapline::clock()? >= at);
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        state: SleepState::At {
            deadline: Nanos::of(deadline),
            leaf: Leaf::new(),
        },
    }
}

/// Where a [`Sleep`] is.
///
/// Discussion: a sleep needs its duration only until its first poll, and
/// its leaf only from then on, so the two share their room; and its deadline
/// is kept in 8 bytes ([`Nanos`]), not the 16 of an `Instant`: 32 bytes in
/// all. A task asleep carries its `Sleep` for as long as it sleeps, and a
/// server may hold a million of them.
#[derive(Debug)]
enum SleepState {
    /// Made by [`sleep`], not polled yet: the deadline counts from the first poll.
    After {
        duration: Duration,
        location: &'static Location<'static>,
    },
    /// The deadline is known; the leaf traps until it passes.
    At { deadline: Nanos, leaf: Leaf },
}

/// An instant as a sleep keeps it: nanoseconds since a fixed epoch of the
/// process.
///
/// Discussion: the epoch lies 2^62 ns (about 146 years) before the first
/// deadline the process makes, so it precedes every reading of a kernel's
/// clock, real or virtual (both count from the machine's boot, or from some
/// reading of it). A deadline then fits exactly, to the nanosecond, up to
/// about 438 years after that first one; a later one is kept as the last
/// that fits, far beyond the end of any program, and an earlier one than
/// the epoch (`sleep_until` an instant of the distant past) as the epoch,
/// which every reading of the clock has passed, so the sleep ends at once
/// as it would have. Turning it back into an `Instant`, once per poll, is
/// `Duration::from_nanos` and an addition.
#[derive(Clone, Copy, Debug)]
struct Nanos(u64);

impl Nanos {
    /// How far before the first deadline the epoch lies.
    const BEFORE: Duration = Duration::from_nanos(1 << 62);

    /// The epoch, fixed the first time it is asked for.
    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(|| {
            let now = Instant::now();
            now.checked_sub(Nanos::BEFORE).unwrap_or(now)
        })
    }

    /// `at`, as nanoseconds since the epoch (saturating both ways).
    fn of(at: Instant) -> Nanos {
        Nanos(Nanos::count(at.saturating_duration_since(Nanos::epoch())))
    }

    /// `duration` after `now`, as a timeout's deadline is (`after`):
    /// `Duration::MAX` means a hundred years.
    fn after(now: Instant, duration: Duration) -> Nanos {
        Nanos::of(after(now, duration))
    }

    /// The nanoseconds in `duration`, saturating: in `u64` arithmetic, not
    /// the `u128` of `Duration::as_nanos`.
    fn count(duration: Duration) -> u64 {
        const PER_SECOND: u64 = 1_000_000_000;
        let whole = duration.as_secs().saturating_mul(PER_SECOND);
        whole.saturating_add(u64::from(duration.subsec_nanos()))
    }

    /// The instant it stands for.
    fn instant(self) -> Instant {
        after(Nanos::epoch(), Duration::from_nanos(self.0))
    }
}

/// The future of [`sleep`] and [`sleep_until`].
///
/// # Examples
///
/// A sleep counts from its first poll, not from when it was made:
///
/// ```
/// use std::time::Duration;
/// use trapline::{sleep, Sleep};
///
/// trapline::run(async {
///     let nap: Sleep = sleep(Duration::from_millis(5));
///     let t0 = trapline::clock()?;
///     nap.await?;
///     assert!(trapline::clock()? >= t0 + Duration::from_millis(5));
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    state: SleepState,
}

impl Future for Sleep {
    type Output = Result<(), TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let now = match clock() {
            Ok(now) => now,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let SleepState::After { duration, location } = this.state {
            this.state = SleepState::At {
                deadline: Nanos::after(now, duration),
                leaf: Leaf::at(location),
            };
        }
        let SleepState::At { deadline, leaf } = &mut this.state else {
            unreachable!("a sleep has its deadline once polled");
        };
        let deadline = deadline.instant();
        if now >= deadline {
            leaf.done();
            return Poll::Ready(Ok(()));
        }
        match leaf.trap(cx, Trap::Sleep { deadline }) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// How a scoped future ended.
enum Ending<T> {
    Done(T),
    Expired(TimeoutId),
}

/// A timeout in force for the task polling a `timeout_after`; unset when
/// the block is left, however it is left.
struct Armed {
    id: TimeoutId,
    owner: Option<TaskId>,
    deadline: Instant,
}

impl Armed {
    fn set(deadline: Instant) -> Result<Armed, TrapError> {
        Ok(Armed {
            id: trapline_traps::set_timeout(deadline)?,
            owner: trapline_traps::running(),
            deadline,
        })
    }

    /// A future can be moved to another task between polls; the kernel
    /// delivers a timeout to the task that set it, so the timeout follows.
    fn follow(&mut self) -> Result<(), TrapError> {
        let now = trapline_traps::running();
        if now != self.owner {
            let _ = trapline_traps::unset_timeout(self.id);
            self.id = trapline_traps::set_timeout(self.deadline)?;
            self.owner = now;
        }
        Ok(())
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        // Outside a kernel there is nothing to unset.
        let _ = trapline_traps::unset_timeout(self.id);
    }
}

/// Polls `future` with a timeout at `deadline` in force.
///
/// Discussion: how the block ended is read from the task's inbox, not from
/// `future`'s output, which may be anything. If a leaf inside the block took
/// the expiry of an *enclosing* timeout, the block reports `OuterTimeout`
/// (the outermost limit wins), so code around it cannot mistake the end of
/// the outer limit for the end of its own. Otherwise, if a leaf inside took
/// this timeout's expiry, the block expired, whatever `future` returned after
/// cleaning up. Only takes made while `future` itself is polled count: a
/// sibling of the block taking the enclosing expiry is none of its business.
async fn within<F: Future>(
    deadline: Instant,
    future: F,
    location: &'static Location<'static>,
) -> Result<Ending<F::Output>, TrapError> {
    let mut armed = Armed::set(deadline)?;
    let mut future = pin!(future);
    // The wrapper is a leaf too: when `future` waits on something that never
    // traps (a foreign future), this `FutureWait` is where the expiry, or a
    // cancellation, is delivered.
    let mut leaf = Leaf::at(location);
    let mut own_taken = None;
    let mut outer_taken = None;
    poll_fn(|cx| {
        // Once an expiry has been taken the block is ending (cleaning up):
        // it must not be armed again in a task it moved to.
        if own_taken.is_none() && outer_taken.is_none() {
            if let Err(e) = armed.follow() {
                return Poll::Ready(Err(e));
            }
        }
        let mark = trapline_traps::taken_mark();
        let shielded = trapline_traps::shielded_waits();
        let scope = trapline_traps::enter_scope(armed.id);
        let polled = match future.as_mut().poll(cx) {
            Poll::Ready(v) => {
                leaf.done();
                Some(Ok(v))
            }
            Poll::Pending => {
                // A shielded wait inside means the future is cleaning up:
                // the block's own wait holds back the interrupts too, and
                // the block ends when the future does.
                let cleaning_up = trapline_traps::shielded_waits() > shielded;
                let _shield = cleaning_up.then(trapline_traps::enter_shield);
                match leaf.trap(cx, Trap::FutureWait) {
                    Ok(()) => None,
                    Err(e) => Some(Err(e)),
                }
            }
        };
        drop(scope);
        if outer_taken.is_none() {
            outer_taken = trapline_traps::enclosing_taken_since(mark);
        }
        if own_taken.is_none() && trapline_traps::timeout_delivered(armed.id) {
            own_taken = Some(armed.id);
        }
        let Some(ended) = polled else {
            return Poll::Pending;
        };
        if let Some(outer) = outer_taken {
            return Poll::Ready(Err(TrapError::OuterTimeout(outer)));
        }
        if let Some(id) = own_taken {
            return Poll::Ready(Ok(Ending::Expired(id)));
        }
        Poll::Ready(ended.map(Ending::Done))
    })
    .await
}

/// Runs `future` with a time limit of `duration`.
///
/// When the limit passes, every leaf inside `future` that waits, or would
/// wait, fails with `TimedOut(id)`, until `future` ends; `future` may handle
/// that and clean up inside [`crate::shield`], and whatever it then returns
/// is dropped: the result is `Err(TrapError::TimedOut(id))`. If `future` completes first, or completes
/// without waiting after the limit, the result is its output.
///
/// Nested timeouts keep apart: if an *enclosing* limit passes while this one
/// is in force, this returns `Err(TrapError::OuterTimeout(outer))`, never
/// `TimedOut`, and the enclosing `timeout_after` returns
/// `Err(TrapError::TimedOut(outer))`. A retry loop that matches `TimedOut`
/// therefore ends when the outer limit does. Other errors: `Cancelled` if the
/// task is cancelled while `future` waits on a foreign future, `NoKernel`
/// outside a kernel.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use trapline::{sleep, timeout_after, TrapError};
///
/// trapline::run(async {
///     let slow = timeout_after(Duration::from_millis(10), sleep(Duration::from_secs(60))).await;
///     assert!(matches!(slow, Err(TrapError::TimedOut(_))));
///     let fast = timeout_after(Duration::from_secs(60), async { 7 }).await;
///     assert_eq!(fast, Ok(7));
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn timeout_after<F: Future>(
    duration: Duration,
    future: F,
) -> impl Future<Output = Result<F::Output, TrapError>> {
    let location = Location::caller();
    async move {
        let deadline = after(clock()?, duration);
        match within(deadline, future, location).await? {
            Ending::Done(v) => Ok(v),
            Ending::Expired(id) => Err(TrapError::TimedOut(id)),
        }
    }
}

/// Runs `future` with a time limit of `duration`, and gives `None` if the
/// limit passed: [`timeout_after`] for work that may just be abandoned.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use trapline::{ignore_after, sleep};
///
/// trapline::run(async {
///     let none = ignore_after(Duration::from_millis(10), sleep(Duration::from_secs(60))).await;
///     assert_eq!(none, Ok(None));
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn ignore_after<F: Future>(
    duration: Duration,
    future: F,
) -> impl Future<Output = Result<Option<F::Output>, TrapError>> {
    let location = Location::caller();
    async move {
        let deadline = after(clock()?, duration);
        match within(deadline, future, location).await? {
            Ending::Done(v) => Ok(Some(v)),
            Ending::Expired(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sleep is its deadline (or duration) and a leaf, sharing their room:
    /// four words, the same before its first poll and after.
    #[test]
    fn a_sleep_is_four_words() {
        assert_eq!(std::mem::size_of::<Sleep>(), 32);
    }

    /// A deadline comes back as the instant it was made from, to the
    /// nanosecond; one before the epoch comes back as the epoch, and one
    /// past the last that fits as that last one. `Duration::MAX` after now
    /// is a hundred years, as for a timeout.
    #[test]
    fn nanos_keep_an_instant_exactly() {
        let now = Instant::now();
        for at in [now, now + Duration::from_nanos(1), now + FOREVER] {
            assert_eq!(Nanos::of(at).instant(), at);
        }
        let epoch = Nanos::epoch();
        assert_eq!(Nanos::of(epoch).0, 0);
        if let Some(before) = epoch.checked_sub(Duration::from_secs(1)) {
            assert_eq!(Nanos::of(before).instant(), epoch);
        }
        let last = Nanos(u64::MAX).instant();
        assert_eq!(Nanos::of(last + FOREVER).instant(), last);
        assert_eq!(Nanos::after(now, Duration::MAX).instant(), now + FOREVER);
        assert_eq!(
            Nanos::after(now, Duration::from_millis(5)).instant(),
            now + Duration::from_millis(5)
        );
    }
}
