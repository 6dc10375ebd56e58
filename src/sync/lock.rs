//! `Lock`: mutual exclusion between tasks, handed over in FIFO order.
//!
//! A lock is free or held. Acquiring a free lock takes it without a trap;
//! acquiring a held one queues the task and parks it with `SchedWait`.
//! Releasing a lock that has waiters does not free it: ownership passes
//! straight to the oldest waiter (a *hand-off*), so a task that releases and
//! at once acquires again goes to the back of the line, and no newcomer can
//! barge past the queue. That is the fairness.
//!
//! Discussion: a waiter that is handed the lock and cancelled at the same
//! moment still takes it (its leaf can make progress, so it completes, and the
//! cancel reaches its next wait); its guard releases the lock when dropped. A
//! waiter dropped after the hand-off but before it looked (its task dropped,
//! or a `select!` that lost) passes the lock on to the next waiter. Either
//! way the lock is never stranded with an owner that will not release it.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::Location;

use trapline_traps::{TaskId, TrapError};

use super::waitlist::{WaitList, Waiting};

/// A fair mutual-exclusion lock for tasks of one kernel.
///
/// It guards no data itself: keep the data beside it (a `RefCell` is enough
/// on one thread), and hold the guard across the awaits that must not
/// interleave with another task's.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use trapline::sync::Lock;
///
/// trapline::run(async {
///     let lock = Rc::new(Lock::new());
///     let guard = lock.acquire().await?;
///     let other = lock.clone();
///     let waiter = trapline::spawn(async move {
///         let _guard = other.acquire().await?;
///         Ok::<_, trapline::TrapError>(trapline::current()?)
///     })?;
///     trapline::yield_now().await?; // the waiter queues up
///     assert_eq!(lock.waiting(), 1);
///     drop(guard); // handed to the waiter
///     assert_eq!(lock.owner(), Some(waiter.id()));
///     assert_eq!(waiter.join().await??, waiter.id());
///     assert!(!lock.locked());
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Lock {
    locked: Cell<bool>,
    owner: Cell<Option<TaskId>>,
    waiters: WaitList<()>,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked.get())
            .field("owner", &self.owner.get())
            .field("waiting", &self.waiters.len())
            .finish()
    }
}

impl Lock {
    /// A free lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = trapline::sync::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub fn new() -> Lock {
        Lock::default()
    }

    /// Whether some task holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = trapline::sync::Lock::new();
    /// let guard = lock.try_acquire().unwrap();
    /// assert!(lock.locked());
    /// drop(guard);
    /// assert!(!lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.locked.get()
    }

    /// The task holding the lock (`None` if free, or held outside a task).
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let lock = trapline::sync::Lock::new();
    ///     let _guard = lock.acquire().await?;
    ///     assert_eq!(lock.owner(), Some(trapline::current()?));
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn owner(&self) -> Option<TaskId> {
        self.owner.get()
    }

    /// How many tasks wait to acquire it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Lock::new().waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Takes the lock if it is free, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = trapline::sync::Lock::new();
    /// let held = lock.try_acquire();
    /// assert!(held.is_some());
    /// assert!(lock.try_acquire().is_none(), "already held");
    /// ```
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        if self.locked.get() {
            return None;
        }
        self.locked.set(true);
        self.owner.set(trapline_traps::running());
        Some(LockGuard { lock: self })
    }

    /// Acquires the lock, waiting in line behind the tasks already waiting.
    ///
    /// A `SchedWait` trap when the lock is held: cancellable and
    /// timeout-able. An interrupted acquire leaves the line and holds
    /// nothing; the lock and the other waiters are as they were.
    ///
    /// # Examples
    ///
    /// A timed-out acquire gives up its place and takes nothing:
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{sync::Lock, timeout_after, TrapError};
    ///
    /// trapline::run(async {
    ///     let lock = Lock::new();
    ///     let held = lock.acquire().await?;
    ///     let second = timeout_after(Duration::from_millis(5), lock.acquire()).await;
    ///     assert!(matches!(second, Err(TrapError::TimedOut(_))));
    ///     assert_eq!(lock.waiting(), 0);
    ///     drop(held);
    ///     assert!(!lock.locked());
    ///     Ok::<(), TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> impl Future<Output = Result<LockGuard<'_>, TrapError>> + '_ {
        let location = Location::caller();
        async move {
            if let Some(guard) = self.try_acquire() {
                return Ok(guard);
            }
            let mut wait = LockWait {
                lock: self,
                waiting: Waiting::new(self.waiters.push(None), location),
                served: false,
            };
            wait.waiting.wait().await?;
            wait.served = true;
            Ok(LockGuard { lock: self })
        }
    }

    /// Frees the lock, or hands it to the oldest waiter.
    fn release(&self) {
        match self.waiters.pop_front() {
            Some(next) => {
                self.owner.set(next.task());
                next.notify();
            }
            None => {
                self.locked.set(false);
                self.owner.set(None);
            }
        }
    }
}

/// A waiter in line; gives its place, or the lock it was handed, back when
/// it goes away unserved.
struct LockWait<'a> {
    lock: &'a Lock,
    waiting: Waiting<()>,
    served: bool,
}

impl Drop for LockWait<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        if self.waiting.entry().notified() {
            self.lock.release(); // handed over, never looked: pass it on
        } else {
            self.lock.waiters.remove(self.waiting.entry());
        }
    }
}

/// Proof of holding a [`Lock`]; releases it when dropped.
///
/// # Examples
///
/// ```
/// let lock = trapline::sync::Lock::new();
/// let guard = lock.try_acquire().unwrap();
/// guard.release(); // the same as dropping it
/// assert!(!lock.locked());
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl<'a> LockGuard<'a> {
    /// Releases the lock (hands it to the oldest waiter, if any).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = trapline::sync::Lock::new();
    /// lock.try_acquire().unwrap().release();
    /// assert!(lock.try_acquire().is_some());
    /// ```
    pub fn release(self) {
        drop(self);
    }

    /// The lock this guard holds.
    pub(crate) fn lock(&self) -> &'a Lock {
        self.lock
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", self.lock)
            .finish()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release();
    }
}
