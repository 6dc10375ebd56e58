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
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use trapline_traps::{Leaf, TimeoutId, Trap, TrapError};

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
        when: When::After(duration),
        leaf: Leaf::new(),
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
        when: When::At(deadline),
        leaf: Leaf::new(),
    }
}

#[derive(Debug, Clone, Copy)]
enum When {
    After(Duration),
    At(Instant),
}

/// The future of [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    when: When,
    leaf: Leaf,
}

impl Future for Sleep {
    type Output = Result<(), TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let now = match clock() {
            Ok(now) => now,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let deadline = match this.when {
            When::At(at) => at,
            When::After(d) => {
                let at = after(now, d);
                this.when = When::At(at);
                at
            }
        };
        if now >= deadline {
            this.leaf.done();
            return Poll::Ready(Ok(()));
        }
        match this.leaf.trap(cx, Trap::Sleep { deadline }) {
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

/// Unsets a timeout when its scope is left, however it is left.
struct Armed(TimeoutId);

impl Drop for Armed {
    fn drop(&mut self) {
        // Outside a kernel there is nothing to unset.
        let _ = trapline_traps::unset_timeout(self.0);
    }
}

/// Polls `future` with a timeout at `deadline` in force.
async fn within<F: Future>(
    deadline: Instant,
    future: F,
    location: &'static Location<'static>,
) -> Result<Ending<F::Output>, TrapError> {
    let id = trapline_traps::set_timeout(deadline)?;
    let _armed = Armed(id);
    let mut future = pin!(future);
    // The wrapper is a leaf too: when `future` waits on something that never
    // traps (a foreign future), this `FutureWait` is where the expiry, or a
    // cancellation, is delivered.
    let mut leaf = Leaf::at(location);
    poll_fn(|cx| {
        let _scope = trapline_traps::enter_scope(id);
        match future.as_mut().poll(cx) {
            Poll::Ready(v) => {
                leaf.done();
                if trapline_traps::timeout_delivered(id) {
                    Poll::Ready(Ok(Ending::Expired(id)))
                } else {
                    Poll::Ready(Ok(Ending::Done(v)))
                }
            }
            Poll::Pending => match leaf.trap(cx, Trap::FutureWait) {
                Ok(()) => Poll::Pending,
                Err(TrapError::TimedOut(t)) if t == id => Poll::Ready(Ok(Ending::Expired(id))),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    })
    .await
}

/// Runs `future` with a time limit of `duration`.
///
/// If the limit passes while `future` waits at a trap, that trap fails with
/// `TimedOut(id)`; `future` may handle it and clean up, and whatever it then
/// returns is dropped: the result is `Err(TrapError::TimedOut(id))`. If
/// `future` completes first, or completes without waiting after the limit,
/// the result is its output.
///
/// Nested timeouts keep apart: an outer limit that passes inside an inner
/// `timeout_after` reaches the inner future as the *outer* id, and the inner
/// `timeout_after` hands it through as part of its output. Other errors:
/// `Cancelled` if the task is cancelled while `future` waits on a foreign
/// future, `NoKernel` outside a kernel.
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
