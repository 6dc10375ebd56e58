//! Synchronization between tasks of one kernel, written only with traps.
//!
//! Every blocking call here is a leaf that traps with `SchedWait` on a wait
//! queue of its own, and every wake is a `SchedWake` of exactly the waiter
//! the primitive chose, as Curio's sync.py and queue.py are written with its
//! wait-queue traps and nothing else. So each blocking call is cancellable
//! and timeout-able like any other wait, and the primitives never touch the
//! kernel's insides.
//!
//! The rules the primitives share (see `waitlist`): waiters are served in
//! FIFO order; a waiter is woken only once it has been *given* what it waited
//! for (the lock, a permit, an item, room for its item); a waiter that goes
//! away without taking what it was given passes it on. Hence: an interrupted
//! `get` loses no item, an interrupted `put` adds nothing, and a lock is never
//! stranded with a waiter that was cancelled.
//!
//! These types are for tasks of one kernel (they are not `Send`); between
//! threads, use [`crate::UniversalQueue`]:
//!
//! ```compile_fail,E0277
//! fn send<T: Send>(_: T) {}
//! send(trapline::sync::Lock::new()); // error: `Rc<..>` cannot be sent between threads safely
//! ```
//!
//! # Layout
//!
//! - `waitlist`: the FIFO of waiters and the leaf every primitive waits with.
//! - [`Event`], [`Lock`], [`Semaphore`], [`Condition`], [`Queue`]: one a file.

mod condition;
mod event;
mod lock;
mod queue;
mod semaphore;
mod waitlist;

use std::fmt;

pub use condition::Condition;
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use queue::Queue;
pub use semaphore::{Permit, Semaphore};

pub(crate) use waitlist::{WaitList, Waiting};

/// A primitive was used against its rules (for example `task_done` called
/// more often than items were put). The primitive is left unchanged.
///
/// # Examples
///
/// ```
/// let queue = trapline::sync::Queue::<u8>::unbounded();
/// let err = queue.task_done().unwrap_err();
/// assert!(err.to_string().contains("task_done"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Misuse(pub &'static str);

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Misuse {}

impl From<Misuse> for std::io::Error {
    fn from(err: Misuse) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, err)
    }
}
