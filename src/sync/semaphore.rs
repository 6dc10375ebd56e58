//! `Semaphore`: a count of permits, handed out in FIFO order.
//!
//! The same hand-off as [`super::Lock`], with a count instead of one owner:
//! a released permit goes straight to the oldest waiter if there is one, and
//! back into the count only if no one waits. A waiter can therefore never be
//! overtaken by a task that arrives later, and a waiter that goes away after
//! being handed a permit passes the permit on.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::Location;

use trapline_traps::TrapError;

use super::waitlist::{WaitList, Waiting};

/// A fair counting semaphore for tasks of one kernel.
///
/// # Examples
///
/// At most two tasks inside at once:
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use trapline::sync::Semaphore;
///
/// trapline::run(async {
///     let slots = Rc::new(Semaphore::new(2));
///     let (inside, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
///     let mut tasks = Vec::new();
///     for _ in 0..5 {
///         let (slots, inside, most) = (slots.clone(), inside.clone(), most.clone());
///         tasks.push(trapline::spawn(async move {
///             let _permit = slots.acquire().await?;
///             inside.set(inside.get() + 1);
///             most.set(most.get().max(inside.get()));
///             trapline::yield_now().await?;
///             inside.set(inside.get() - 1);
///             Ok::<(), trapline::TrapError>(())
///         })?);
///     }
///     for task in tasks {
///         task.join().await??;
///     }
///     assert_eq!((most.get(), slots.available()), (2, 2));
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Semaphore {
    permits: Cell<usize>,
    waiters: WaitList<()>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.permits.get())
            .field("waiting", &self.waiters.len())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Semaphore::new(3).available(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Cell::new(permits),
            waiters: WaitList::default(),
        }
    }

    /// How many permits are free.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = trapline::sync::Semaphore::new(1);
    /// let _permit = sem.try_acquire().unwrap();
    /// assert_eq!(sem.available(), 0);
    /// ```
    pub fn available(&self) -> usize {
        self.permits.get()
    }

    /// How many tasks wait for a permit.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Semaphore::new(1).waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Takes a permit if one is free and no task waits, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = trapline::sync::Semaphore::new(1);
    /// let first = sem.try_acquire();
    /// assert!(first.is_some() && sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let n = self.permits.get();
        if n == 0 || !self.waiters.is_empty() {
            return None;
        }
        self.permits.set(n - 1);
        Some(Permit { sem: self })
    }

    /// Takes a permit, waiting in line if none is free.
    ///
    /// A `SchedWait` trap when it waits: cancellable and timeout-able. An
    /// interrupted acquire leaves the line and holds no permit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{ignore_after, sync::Semaphore};
    ///
    /// trapline::run(async {
    ///     let sem = Semaphore::new(1);
    ///     let permit = sem.acquire().await?;
    ///     assert!(ignore_after(Duration::from_millis(5), sem.acquire()).await?.is_none());
    ///     drop(permit);
    ///     assert_eq!((sem.available(), sem.waiting()), (1, 0));
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> impl Future<Output = Result<Permit<'_>, TrapError>> + '_ {
        let location = Location::caller();
        async move {
            if let Some(permit) = self.try_acquire() {
                return Ok(permit);
            }
            let mut wait = SemaphoreWait {
                sem: self,
                waiting: Waiting::new(self.waiters.push(None), location),
                served: false,
            };
            wait.waiting.wait().await?;
            wait.served = true;
            Ok(Permit { sem: self })
        }
    }

    /// Gives one permit back: to the oldest waiter, or to the count.
    fn release(&self) {
        match self.waiters.pop_front() {
            Some(next) => next.notify(),
            None => self.permits.set(self.permits.get() + 1),
        }
    }
}

/// A waiter in line; see `LockWait`.
struct SemaphoreWait<'a> {
    sem: &'a Semaphore,
    waiting: Waiting<()>,
    served: bool,
}

impl Drop for SemaphoreWait<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        if self.waiting.entry().notified() {
            self.sem.release();
        } else {
            self.sem.waiters.remove(self.waiting.entry());
        }
    }
}

/// One permit of a [`Semaphore`]; given back when dropped.
///
/// # Examples
///
/// ```
/// let sem = trapline::sync::Semaphore::new(1);
/// let permit = sem.try_acquire().unwrap();
/// drop(permit);
/// assert_eq!(sem.available(), 1);
/// ```
#[must_use = "the permit is given back when dropped"]
pub struct Permit<'a> {
    sem: &'a Semaphore,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("of", self.sem).finish()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}
