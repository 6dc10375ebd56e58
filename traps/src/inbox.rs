//! What the kernel has to tell a task: interrupts and per-leaf answers.
//!
//! Discussion: interrupts belong to the task, not to a leaf. The kernel cannot
//! know which leaf should see a cancellation, so it leaves it here and the
//! next leaf *about to trap* takes it. A leaf that can still make progress
//! completes normally; only a leaf that would wait learns that it must stop.
//! A timeout is narrower: it is taken only by a leaf polled inside the scope
//! of that timeout (see [`crate::enter_scope`]), so `join!(timeout_after(d, x), y)`
//! never hands x's timeout to y. Two interrupts can be pending at once (a
//! cancel and a timeout); cancellation wins, then the outermost timeout.

use crate::error::TrapError;
use crate::ids::TimeoutId;

/// Where a task's cancellation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CancelState {
    /// Nobody cancelled the task.
    #[default]
    None,
    /// Cancelled; not yet taken by a leaf.
    Pending,
    /// Cancelled and taken: later cancels are ignored.
    Delivered,
}

/// One expired timeout of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expiry {
    id: TimeoutId,
    delivered: bool,
}

/// A task's pending interrupts and the answers owed to its leaves.
///
/// The kernel keeps one per task and lends it to the trap slot while the task
/// is polled.
///
/// # Examples
///
/// ```
/// use trapline_traps::{Inbox, TrapError};
///
/// let mut inbox = Inbox::default();
/// assert!(inbox.cancel());
/// assert!(!inbox.cancel(), "a second cancel is ignored");
/// assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
/// assert_eq!(inbox.take_interrupt(&[]), None);
/// ```
#[derive(Debug, Default)]
pub struct Inbox {
    cancel: CancelState,
    expired: Vec<Expiry>,
    answers: Vec<(u64, TrapError)>,
}

impl Inbox {
    /// An empty inbox.
    pub const fn new() -> Inbox {
        Inbox {
            cancel: CancelState::None,
            expired: Vec::new(),
            answers: Vec::new(),
        }
    }

    /// Marks the task cancelled. Returns `false`, changing nothing, if it was
    /// cancelled before (pending or delivered).
    pub fn cancel(&mut self) -> bool {
        if self.cancel != CancelState::None {
            return false;
        }
        self.cancel = CancelState::Pending;
        true
    }

    /// Where the task's cancellation stands.
    pub fn cancel_state(&self) -> CancelState {
        self.cancel
    }

    /// Records that timeout `id` expired. Idempotent.
    pub fn expire(&mut self, id: TimeoutId) {
        if !self.expired.iter().any(|e| e.id == id) {
            self.expired.push(Expiry {
                id,
                delivered: false,
            });
        }
    }

    /// Forgets timeout `id` (its scope has ended).
    pub fn forget(&mut self, id: TimeoutId) {
        self.expired.retain(|e| e.id != id);
    }

    /// Whether timeout `id` expired and was taken by a leaf in its scope.
    pub fn was_delivered(&self, id: TimeoutId) -> bool {
        self.expired.iter().any(|e| e.id == id && e.delivered)
    }

    /// Whether an interrupt waits to be taken (by a leaf in the right scope).
    pub fn has_pending_interrupt(&self) -> bool {
        self.cancel == CancelState::Pending || self.expired.iter().any(|e| !e.delivered)
    }

    /// Leaves a leaf-specific answer for the leaf whose sequence number is `seq`.
    pub fn answer(&mut self, seq: u64, err: TrapError) {
        self.answers.push((seq, err));
    }

    /// Takes the answer left for leaf `seq`, if any.
    pub fn take_answer(&mut self, seq: u64) -> Option<TrapError> {
        let at = self.answers.iter().position(|(s, _)| *s == seq)?;
        Some(self.answers.swap_remove(at).1)
    }

    /// Takes the interrupt a leaf about to trap must see, given the timeout
    /// scopes it is polled in (outermost first): a pending cancel first, then
    /// the outermost expired timeout in scope.
    pub fn take_interrupt(&mut self, scopes: &[TimeoutId]) -> Option<TrapError> {
        if self.cancel == CancelState::Pending {
            self.cancel = CancelState::Delivered;
            return Some(TrapError::Cancelled);
        }
        if self.expired.is_empty() {
            return None;
        }
        for id in scopes {
            if let Some(e) = self
                .expired
                .iter_mut()
                .find(|e| e.id == *id && !e.delivered)
            {
                e.delivered = true;
                return Some(TrapError::TimedOut(*id));
            }
        }
        None
    }

    /// Whether the inbox holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.cancel == CancelState::None && self.expired.is_empty() && self.answers.is_empty()
    }
}
