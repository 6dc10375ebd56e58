//! `Condition`: wait, with a lock held, until another task says things changed.
//!
//! A condition owns a [`Lock`]. `wait` takes the guard, joins the condition's
//! line and releases the lock in one step (nothing can run between them on
//! one kernel), parks with `SchedWait`, and once notified acquires the lock
//! again (in the lock's own FIFO line) before it returns the guard.
//! `notify(n)` serves the `n` oldest waiters.
//!
//! Discussion: level-triggered interrupts decide what an interrupted wait
//! leaves behind. A waiter interrupted before it is notified leaves the line
//! and does *not* take the lock back: taking it would be a wait of its own,
//! which the interrupt forbids, and the guard it gave up is gone. The
//! interrupt is returned, the lock is not held, and the other waiters are as
//! they were. A waiter notified and interrupted at the same moment counts as
//! notified, then fails at the re-acquire the same way.

use std::fmt;
use std::future::Future;
use std::panic::Location;

use trapline_traps::TrapError;

use super::lock::{Lock, LockGuard};
use super::waitlist::{WaitList, Waiting};

/// A condition variable with its own lock, for tasks of one kernel.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use trapline::sync::Condition;
///
/// trapline::run(async {
///     let (cond, items) = (Rc::new(Condition::new()), Rc::new(RefCell::new(Vec::new())));
///     let (c, i) = (cond.clone(), items.clone());
///     let consumer = trapline::spawn(async move {
///         let guard = c.lock().await?;
///         let guard = c.wait_for(guard, || !i.borrow().is_empty()).await?;
///         let got = i.borrow_mut().pop();
///         drop(guard);
///         Ok::<_, trapline::TrapError>(got)
///     })?;
///     trapline::yield_now().await?;
///     let guard = cond.lock().await?;
///     items.borrow_mut().push(7);
///     cond.notify_all();
///     drop(guard);
///     assert_eq!(consumer.join().await??, Some(7));
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Condition {
    lock: Lock,
    waiters: WaitList<()>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .field("waiting", &self.waiters.len())
            .finish()
    }
}

impl Condition {
    /// A condition with a free lock and no waiters.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = trapline::sync::Condition::new();
    /// assert!(!cond.locked());
    /// ```
    pub fn new() -> Condition {
        Condition::default()
    }

    /// Acquires the condition's lock; see [`Lock::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let cond = trapline::sync::Condition::new();
    ///     let _guard = cond.lock().await?;
    ///     assert!(cond.locked());
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = Result<LockGuard<'_>, TrapError>> + '_ {
        self.lock.acquire()
    }

    /// Whether the condition's lock is held.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!trapline::sync::Condition::new().locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// How many tasks wait to be notified.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Condition::new().waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Releases the lock, waits to be notified, and acquires the lock again.
    ///
    /// A `SchedWait` trap, then the lock's: cancellable and timeout-able.
    /// Interrupted, it returns the error *without* the lock (see the
    /// module's Discussion). A guard of another lock is refused with
    /// [`TrapError::Unsupported`], and that guard is released.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{sync::Condition, timeout_after, TrapError};
    ///
    /// trapline::run(async {
    ///     let cond = Condition::new();
    ///     let guard = cond.lock().await?;
    ///     let waited = timeout_after(Duration::from_millis(5), cond.wait(guard)).await;
    ///     assert!(matches!(waited, Err(TrapError::TimedOut(_))));
    ///     assert_eq!((cond.locked(), cond.waiting()), (false, 0));
    ///     Ok::<(), TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn wait<'a>(
        &'a self,
        guard: LockGuard<'a>,
    ) -> impl Future<Output = Result<LockGuard<'a>, TrapError>> + 'a {
        let location = Location::caller();
        async move {
            self.own(&guard)?;
            WaitAt(location).wait(self, guard).await
        }
    }

    /// Waits, releasing and re-acquiring the lock around each wait, until
    /// `predicate` holds; returns with the lock held.
    ///
    /// Each wait is [`Condition::wait`]'s: interrupted, it returns the error
    /// without the lock. A guard of another lock is refused with
    /// [`TrapError::Unsupported`] before `predicate` is asked, and that
    /// guard is released.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let cond = trapline::sync::Condition::new();
    ///     let guard = cond.lock().await?;
    ///     let _guard = cond.wait_for(guard, || true).await?; // holds already: no wait
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn wait_for<'a, P: FnMut() -> bool + 'a>(
        &'a self,
        guard: LockGuard<'a>,
        mut predicate: P,
    ) -> impl Future<Output = Result<LockGuard<'a>, TrapError>> + 'a {
        let location = Location::caller();
        async move {
            self.own(&guard)?;
            let mut guard = guard;
            while !predicate() {
                guard = WaitAt(location).wait(self, guard).await?;
            }
            Ok(guard)
        }
    }

    /// Refuses a guard of another lock (`wait` and `wait_for` alike).
    fn own(&self, guard: &LockGuard<'_>) -> Result<(), TrapError> {
        if std::ptr::eq(guard.lock(), &self.lock) {
            Ok(())
        } else {
            Err(TrapError::Unsupported(
                "a Condition waits only with a guard of its own lock",
            ))
        }
    }

    /// Wakes the `n` oldest waiters; returns how many there were.
    ///
    /// The woken re-acquire the lock in turn, so the caller usually holds
    /// it while it changes the state and notifies.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Condition::new().notify(1), 0, "no one waits");
    /// ```
    pub fn notify(&self, n: usize) -> usize {
        let mut woken = 0;
        while woken < n {
            let Some(waiter) = self.waiters.pop_front() else {
                break;
            };
            waiter.notify();
            woken += 1;
        }
        woken
    }

    /// Wakes every waiter; returns how many there were.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Condition::new().notify_all(), 0);
    /// ```
    pub fn notify_all(&self) -> usize {
        self.notify(usize::MAX)
    }
}

/// `wait` at the location of the user's `wait_for`.
struct WaitAt(&'static Location<'static>);

impl WaitAt {
    async fn wait<'a>(
        self,
        cond: &'a Condition,
        guard: LockGuard<'a>,
    ) -> Result<LockGuard<'a>, TrapError> {
        let mut wait = ConditionWait {
            cond,
            waiting: Waiting::new(cond.waiters.push(None), self.0),
        };
        drop(guard);
        wait.waiting.wait().await?;
        drop(wait);
        cond.lock.acquire().await
    }
}

/// A waiter; leaves the line if it goes away unserved. A notify it never
/// looked at is not passed on: a condition's notify is a hint to look
/// again, not a resource.
struct ConditionWait<'a> {
    cond: &'a Condition,
    waiting: Waiting<()>,
}

impl Drop for ConditionWait<'_> {
    fn drop(&mut self) {
        self.cond.waiters.remove(self.waiting.entry());
    }
}
