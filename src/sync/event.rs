//! `Event`: a flag that tasks can wait to see set.
//!
//! Setting the event serves every waiter at once (each was queued with a
//! `SchedWait` of its own); a waiter served by a `set` returns even if the
//! event is cleared again before it runs. Waiting on a set event returns at
//! once, without a trap.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::Location;

use trapline_traps::TrapError;

use super::waitlist::{WaitList, Waiting};

/// A settable, clearable flag to wait on.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use trapline::sync::Event;
///
/// trapline::run(async {
///     let ready = Rc::new(Event::new());
///     let seen = ready.clone();
///     let waiter = trapline::spawn(async move { seen.wait().await })?;
///     trapline::yield_now().await?;
///     assert_eq!(ready.waiting(), 1);
///     ready.set();
///     waiter.join().await??;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Event {
    set: Cell<bool>,
    waiters: WaitList<()>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.set.get())
            .field("waiting", &self.waiters.len())
            .finish()
    }
}

impl Event {
    /// A clear event.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!trapline::sync::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event::default()
    }

    /// Whether the event is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = trapline::sync::Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// How many tasks wait for it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Event::new().waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Sets the event and wakes every waiter, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = trapline::sync::Event::new();
    /// event.set();
    /// event.set(); // harmless
    /// assert!(event.is_set());
    /// ```
    pub fn set(&self) {
        self.set.set(true);
        for waiter in self.waiters.take_all() {
            waiter.notify();
        }
    }

    /// Clears the event; later waits wait again.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = trapline::sync::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.set.set(false);
    }

    /// Waits until the event is set.
    ///
    /// A `SchedWait` trap unless the event is set already: cancellable and
    /// timeout-able; an interrupted wait leaves the waiters.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{sync::Event, timeout_after, TrapError};
    ///
    /// trapline::run(async {
    ///     let event = Event::new();
    ///     let waited = timeout_after(Duration::from_millis(5), event.wait()).await;
    ///     assert!(matches!(waited, Err(TrapError::TimedOut(_))));
    ///     assert_eq!(event.waiting(), 0);
    ///     event.set();
    ///     event.wait().await // set: returns at once
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn wait(&self) -> impl Future<Output = Result<(), TrapError>> + '_ {
        let location = Location::caller();
        async move {
            if self.set.get() {
                return Ok(());
            }
            let wait = EventWait {
                event: self,
                waiting: Waiting::new(self.waiters.push(None), location),
            };
            let mut wait = wait;
            wait.waiting.wait().await
        }
    }
}

/// A waiter; leaves the list if it goes away unserved.
struct EventWait<'a> {
    event: &'a Event,
    waiting: Waiting<()>,
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        // A served waiter is out of the list already: this is a no-op then.
        self.event.waiters.remove(self.waiting.entry());
    }
}
