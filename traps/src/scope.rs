//! Timeout scopes: which timeouts are in force for what is being polled.
//!
//! A `timeout_after` block enters its timeout's scope around each poll of
//! the future it wraps. A leaf that traps records the innermost scope in
//! force, and only leaves inside a timeout's scope can take its expiry, so a
//! timeout never lands in a sibling future of the same task.

use crate::ids::TimeoutId;
use crate::slot::SLOT;

/// Marks timeout `id` as in force for what is polled until the guard drops.
///
/// A timeout wrapper enters its scope around each poll of its inner future;
/// only leaves polled inside the scope can take `TimedOut(id)`.
///
/// # Examples
///
/// ```
/// use trapline_traps::{enter_scope, TimeoutId};
///
/// let scope = enter_scope(TimeoutId::new(0, 1));
/// drop(scope);
/// ```
pub fn enter_scope(id: TimeoutId) -> Scope {
    SLOT.with(|s| s.borrow_mut().scopes.push(id));
    Scope { id }
}

/// A timeout scope in force; see [`enter_scope`].
///
/// # Examples
///
/// Scopes nest, and each guard ends its own:
///
/// ```
/// use trapline_traps::{enter_scope, innermost_scope, TimeoutId};
///
/// let (outer, inner) = (TimeoutId::new(0, 1), TimeoutId::new(1, 2));
/// let a = enter_scope(outer);
/// let b = enter_scope(inner);
/// assert_eq!(innermost_scope(), Some(inner));
/// drop(b);
/// assert_eq!(innermost_scope(), Some(outer));
/// drop(a);
/// assert_eq!(innermost_scope(), None);
/// ```
#[derive(Debug)]
#[must_use = "the scope ends when this guard is dropped"]
pub struct Scope {
    id: TimeoutId,
}

impl Drop for Scope {
    fn drop(&mut self) {
        SLOT.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(at) = s.scopes.iter().rposition(|id| *id == self.id) {
                s.scopes.truncate(at);
            }
        });
    }
}

/// Whether timeout `id` of the running task expired and was taken by a leaf.
///
/// # Examples
///
/// How a timeout block learns that it expired:
///
/// ```
/// use std::task::{Context, Waker};
/// use trapline_traps::{enter, enter_scope, leave, timeout_delivered};
/// use trapline_traps::{Inbox, Leaf, TaskId, TimeoutId, Trap, TrapError};
///
/// let id = TimeoutId::new(0, 1);
/// let mut inbox = Inbox::new();
/// inbox.expire(id); // the kernel saw the deadline pass
/// enter(TaskId::new(0, 1), inbox);
/// assert!(!timeout_delivered(id), "expired, but no leaf has taken it");
/// let scope = enter_scope(id);
/// let mut leaf = Leaf::new();
/// let waited = leaf.trap(&Context::from_waker(Waker::noop()), Trap::Yield);
/// assert_eq!(waited, Err(TrapError::TimedOut(id)));
/// drop(scope);
/// assert!(timeout_delivered(id));
/// let _inbox = leave(&mut Vec::new());
/// ```
pub fn timeout_delivered(id: TimeoutId) -> bool {
    SLOT.with(|s| s.borrow().inbox.was_delivered(id))
}

/// The innermost timeout scope in force right now. A kernel records it as
/// the parent of a timeout being set, to know which parks an expiry reaches.
///
/// # Examples
///
/// ```
/// use trapline_traps::{enter_scope, innermost_scope, TimeoutId};
///
/// assert_eq!(innermost_scope(), None);
/// let id = TimeoutId::new(0, 1);
/// let _scope = enter_scope(id);
/// assert_eq!(innermost_scope(), Some(id));
/// ```
pub fn innermost_scope() -> Option<TimeoutId> {
    SLOT.with(|s| s.borrow().scopes.last().copied())
}

/// Forgets timeout `id` in the running task's inbox (its scope is over).
pub(crate) fn forget_timeout(id: TimeoutId) {
    SLOT.with(|s| s.borrow_mut().inbox.forget(id));
}

/// A mark in the log of expiries taken by leaves during the current poll;
/// see [`enclosing_taken_since`].
///
/// # Examples
///
/// ```
/// // Outside a poll the log is empty.
/// assert_eq!(trapline_traps::taken_mark(), 0);
/// ```
pub fn taken_mark() -> usize {
    SLOT.with(|s| s.borrow().taken.len())
}

/// The outermost timeout in force right now whose expiry a leaf took since
/// `mark`. A timeout block asks this after polling its future (its own scope
/// left), to learn whether a leaf inside it took an *enclosing* expiry.
///
/// # Examples
///
/// ```
/// use trapline_traps::{enclosing_taken_since, taken_mark};
///
/// let mark = taken_mark();
/// assert_eq!(enclosing_taken_since(mark), None);
/// ```
pub fn enclosing_taken_since(mark: usize) -> Option<TimeoutId> {
    SLOT.with(|s| {
        let s = s.borrow();
        let since = s.taken.get(mark..).unwrap_or(&[]);
        s.scopes.iter().copied().find(|id| since.contains(id))
    })
}

/// Holds back cancellation and the timeouts already in force, for what is
/// polled until the guard drops: a leaf inside can wait, to clean up after
/// catching `Cancelled` or `TimedOut`. What was held back reaches the first
/// leaf that would wait after the shield is left. Timeouts set inside the
/// shield apply inside it as usual.
///
/// # Examples
///
/// ```
/// use trapline_traps::{enter, enter_shield, leave, Inbox, TaskId};
///
/// let mut inbox = Inbox::new();
/// inbox.cancel();
/// enter(TaskId::new(0, 1), inbox);
/// let shield = enter_shield();
/// // ... a leaf polled here may wait despite the cancel ...
/// drop(shield);
/// let inbox = leave(&mut Vec::new());
/// assert!(!inbox.is_empty(), "the cancel is still there, for later");
/// ```
pub fn enter_shield() -> Shield {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        let depth = s.scopes.len();
        s.shields.push(depth);
    });
    Shield { _private: () }
}

/// A shield in force; see [`enter_shield`].
#[derive(Debug)]
#[must_use = "the shield ends when this guard is dropped"]
pub struct Shield {
    _private: (),
}

impl Drop for Shield {
    fn drop(&mut self) {
        SLOT.with(|s| {
            s.borrow_mut().shields.pop();
        });
    }
}

/// How many leaves have trapped inside a shield during the current poll. A
/// timeout block compares it before and after polling its future: if a
/// shielded wait happened inside, the future is cleaning up, and the block
/// waits for it instead of ending at its limit.
///
/// # Examples
///
/// ```
/// assert_eq!(trapline_traps::shielded_waits(), 0);
/// ```
pub fn shielded_waits() -> usize {
    SLOT.with(|s| s.borrow().shielded_waits)
}

/// The interrupt in force for the running task, *shields or no shields*:
/// `Cancelled` if it was cancelled, else `TimedOut(id)` for the outermost
/// expired timeout in force. Taken as a leaf would take it (a timeout block
/// around learns that its expiry was seen), but nothing waits. `None` if
/// there is none, or no task is being polled.
///
/// Inside a shield this is how cleanup code asks whether it has been told
/// to stop, without waiting to find out.
///
/// # Examples
///
/// ```
/// use trapline_traps::{enter, enter_shield, leave, pending_interrupt, Inbox, TaskId, TrapError};
///
/// assert_eq!(pending_interrupt(), None, "no task is polled");
/// let mut inbox = Inbox::new();
/// inbox.cancel();
/// enter(TaskId::new(0, 1), inbox);
/// let _shield = enter_shield();
/// assert_eq!(pending_interrupt(), Some(TrapError::Cancelled), "seen through the shield");
/// let _inbox = leave(&mut Vec::new());
/// ```
pub fn pending_interrupt() -> Option<crate::TrapError> {
    crate::slot::running()?;
    SLOT.with(|s| {
        let s = &mut *s.borrow_mut();
        let err = s.inbox.take_interrupt(&s.scopes)?;
        if let crate::TrapError::TimedOut(id) = err {
            s.taken.push(id);
        }
        Some(err)
    })
}
