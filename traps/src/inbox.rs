//! What the kernel has to tell a task: interrupts and per-leaf answers.
//!
//! Discussion: interrupts (`Cancelled`, `TimedOut`) belong to the task, not
//! to a leaf, and they are *level-triggered*: once a task is cancelled, every
//! leaf of it that would wait fails with `Cancelled`; once a timeout has
//! expired, every leaf inside that timeout's scope that would wait fails with
//! `TimedOut(id)`, until the scope is left. A leaf that can still make
//! progress completes normally: only a leaf that would wait learns that it
//! must stop. When an interrupt arrives, the kernel resumes the leaves parked
//! in its scope so that each of them looks again.
//!
//! This is why a cancelled `join!` of two reads sees both fail, and why a
//! `timeout_after` over any mix of branches ends at its limit: no branch can
//! start a new wait inside an interrupted scope. To wait anyway — to clean up
//! after catching the error — a task enters a *shield* (see
//! [`crate::enter_shield`]): inside it, cancellation and the timeouts set
//! outside it are held back, and they reach the first leaf that would wait
//! after the shield is left. A timeout is scoped (see
//! [`crate::enter_scope`]), so `join!(timeout_after(d, x), y)` never hands
//! x's timeout to y. When several interrupts are in force, cancellation wins,
//! then the outermost timeout.

use crate::error::TrapError;
use crate::ids::TimeoutId;

/// Whether a task was cancelled, and whether a leaf has seen it yet.
///
/// # Examples
///
/// ```
/// use trapline_traps::{Delivery, Inbox, TrapError};
///
/// let mut inbox = Inbox::new();
/// assert_eq!(inbox.cancel_state(), Delivery::None);
/// inbox.cancel();
/// assert_eq!(inbox.cancel_state(), Delivery::Pending);
/// assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
/// assert_eq!(inbox.cancel_state(), Delivery::Delivered);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Not cancelled.
    #[default]
    None,
    /// Cancelled; no leaf has seen it yet.
    Pending,
    /// Cancelled, and seen by at least one leaf. Still in force.
    Delivered,
}

/// One expired timeout of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expiry {
    id: TimeoutId,
    /// A leaf inside its scope has seen it.
    taken: bool,
}

/// A task's interrupts in force and the answers owed to its leaves.
///
/// The kernel keeps one per task and lends it to the trap slot while the task
/// is polled.
///
/// Discussion: almost every task, almost always, has nothing in its inbox,
/// and the inbox crosses the slot twice per poll. So the inbox is one
/// pointer: empty, it is `None` and costs nothing to lend or to look at; the
/// first interrupt or answer boxes what it holds, and the box goes again once
/// it holds nothing. A task that is cancelled keeps its box, since a cancel
/// stays in force.
///
/// # Examples
///
/// ```
/// use trapline_traps::{Inbox, TrapError};
///
/// let mut inbox = Inbox::default();
/// assert!(inbox.cancel());
/// assert!(!inbox.cancel(), "a second cancel is ignored");
/// // Level-triggered: every leaf that would wait sees it.
/// assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
/// assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
/// ```
#[derive(Debug, Default)]
pub struct Inbox {
    /// `None` while the inbox holds nothing.
    held: Option<Box<Held>>,
}

/// What a non-empty inbox holds.
#[derive(Debug, Default)]
struct Held {
    cancel: Delivery,
    expired: Vec<Expiry>,
    answers: Vec<(u64, TrapError)>,
    throttled: Option<TrapError>,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.cancel == Delivery::None
            && self.expired.is_empty()
            && self.answers.is_empty()
            && self.throttled.is_none()
    }
}

impl Inbox {
    /// An empty inbox.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(trapline_traps::Inbox::new().is_empty());
    /// ```
    pub const fn new() -> Inbox {
        Inbox { held: None }
    }

    /// What the inbox holds, boxed on first use.
    fn held(&mut self) -> &mut Held {
        self.held.get_or_insert_with(Box::default)
    }

    /// Lets the box go once it holds nothing.
    fn tidy(&mut self) {
        if self.held.as_ref().is_some_and(|h| h.is_empty()) {
            self.held = None;
        }
    }

    /// Marks the task cancelled. Returns `false`, changing nothing, if it was
    /// cancelled before.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut inbox = trapline_traps::Inbox::new();
    /// assert!(inbox.cancel());
    /// assert!(!inbox.cancel());
    /// ```
    pub fn cancel(&mut self) -> bool {
        let held = self.held();
        if held.cancel != Delivery::None {
            return false;
        }
        held.cancel = Delivery::Pending;
        true
    }

    /// Whether the task is cancelled, and whether a leaf has seen it.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Delivery, Inbox};
    ///
    /// assert_eq!(Inbox::new().cancel_state(), Delivery::None);
    /// ```
    #[inline]
    pub fn cancel_state(&self) -> Delivery {
        self.held.as_ref().map_or(Delivery::None, |h| h.cancel)
    }

    /// Records that timeout `id` expired. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TimeoutId, TrapError};
    ///
    /// let id = TimeoutId::new(0, 1);
    /// let mut inbox = Inbox::new();
    /// inbox.expire(id);
    /// assert_eq!(inbox.take_interrupt(&[]), None, "outside its scope");
    /// assert_eq!(inbox.take_interrupt(&[id]), Some(TrapError::TimedOut(id)));
    /// ```
    pub fn expire(&mut self, id: TimeoutId) {
        let held = self.held();
        if !held.expired.iter().any(|e| e.id == id) {
            held.expired.push(Expiry { id, taken: false });
        }
    }

    /// Forgets timeout `id`: its scope has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TimeoutId};
    ///
    /// let id = TimeoutId::new(0, 1);
    /// let mut inbox = Inbox::new();
    /// inbox.expire(id);
    /// inbox.forget(id);
    /// assert_eq!(inbox.take_interrupt(&[id]), None);
    /// assert!(inbox.is_empty());
    /// ```
    pub fn forget(&mut self, id: TimeoutId) {
        if let Some(held) = &mut self.held {
            held.expired.retain(|e| e.id != id);
            self.tidy();
        }
    }

    /// Whether timeout `id` expired and a leaf inside its scope has seen it.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TimeoutId};
    ///
    /// let id = TimeoutId::new(0, 1);
    /// let mut inbox = Inbox::new();
    /// inbox.expire(id);
    /// assert!(!inbox.was_delivered(id));
    /// inbox.take_interrupt(&[id]);
    /// assert!(inbox.was_delivered(id));
    /// ```
    pub fn was_delivered(&self, id: TimeoutId) -> bool {
        self.held
            .as_ref()
            .is_some_and(|h| h.expired.iter().any(|e| e.id == id && e.taken))
    }

    /// Leaves a leaf-specific answer (such as `ResourceBusy`) for leaf `seq`.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.answer(3, TrapError::ResourceBusy);
    /// assert_eq!(inbox.take_answer(4), None, "not for leaf 4");
    /// assert_eq!(inbox.take_answer(3), Some(TrapError::ResourceBusy));
    /// ```
    pub fn answer(&mut self, seq: u64, err: TrapError) {
        self.held().answers.push((seq, err));
    }

    /// Takes the answer left for leaf `seq`, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.answer(3, TrapError::ResourceBusy);
    /// assert_eq!(inbox.take_answer(3), Some(TrapError::ResourceBusy));
    /// assert_eq!(inbox.take_answer(3), None);
    /// ```
    pub fn take_answer(&mut self, seq: u64) -> Option<TrapError> {
        let held = self.held.as_mut()?;
        let at = held.answers.iter().position(|(s, _)| *s == seq)?;
        let (_, err) = held.answers.remove(at);
        self.tidy();
        Some(err)
    }

    /// Drops the answers left for leaf `seq` untaken (the leaf completed, or
    /// was dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.answer(3, TrapError::ResourceBusy);
    /// inbox.scrub(3);
    /// assert!(inbox.is_empty());
    /// ```
    #[inline]
    pub fn scrub(&mut self, seq: u64) {
        if let Some(held) = &mut self.held {
            held.answers.retain(|(s, _)| *s != seq);
            self.tidy();
        }
    }

    /// The interrupt a leaf about to wait must see, given the timeout scopes
    /// in force where it is polled (outermost first): cancellation first,
    /// then the outermost expired timeout in scope. Level-triggered: it stays
    /// in force for the next leaf too.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TimeoutId, TrapError};
    ///
    /// let (outer, inner) = (TimeoutId::new(0, 1), TimeoutId::new(1, 2));
    /// let mut inbox = Inbox::new();
    /// inbox.expire(inner);
    /// inbox.expire(outer);
    /// assert_eq!(inbox.take_interrupt(&[outer, inner]), Some(TrapError::TimedOut(outer)));
    /// assert_eq!(inbox.take_interrupt(&[inner]), Some(TrapError::TimedOut(inner)));
    /// inbox.cancel();
    /// assert_eq!(inbox.take_interrupt(&[outer, inner]), Some(TrapError::Cancelled), "cancel first");
    /// ```
    pub fn take_interrupt(&mut self, scopes: &[TimeoutId]) -> Option<TrapError> {
        let held = self.held.as_mut()?;
        if held.cancel != Delivery::None {
            held.cancel = Delivery::Delivered;
            return Some(TrapError::Cancelled);
        }
        self.take_expiry(scopes)
    }

    /// Like [`Inbox::take_interrupt`], for a leaf inside a shield:
    /// cancellation is held back, and `scopes` are only the timeouts set
    /// inside the shield.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.cancel();
    /// assert_eq!(inbox.take_expiry(&[]), None, "shielded from the cancel");
    /// assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled), "after the shield");
    /// ```
    pub fn take_expiry(&mut self, scopes: &[TimeoutId]) -> Option<TrapError> {
        let held = self.held.as_mut()?;
        for id in scopes {
            if let Some(e) = held.expired.iter_mut().find(|e| e.id == *id) {
                e.taken = true;
                return Some(TrapError::TimedOut(*id));
            }
        }
        None
    }

    /// Records that a poll held back `err` after the most interrupts one
    /// poll may deliver (a loop catching them and waiting again).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.throttle(TrapError::Cancelled);
    /// assert_eq!(inbox.take_throttled(), Some(TrapError::Cancelled));
    /// assert_eq!(inbox.take_throttled(), None);
    /// ```
    pub fn throttle(&mut self, err: TrapError) {
        self.held().throttled = Some(err);
    }

    /// The interrupt the last poll held back, if it was throttled; the
    /// kernel then resumes the task so that delivery goes on next poll.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline_traps::Inbox::new().take_throttled(), None);
    /// ```
    #[inline]
    pub fn take_throttled(&mut self) -> Option<TrapError> {
        let err = self.held.as_mut()?.throttled.take();
        self.tidy();
        err
    }

    /// Whether the inbox holds nothing at all.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut inbox = trapline_traps::Inbox::new();
    /// assert!(inbox.is_empty());
    /// inbox.cancel();
    /// assert!(!inbox.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.held.as_ref().is_none_or(|h| {
            h.cancel == Delivery::None && h.expired.is_empty() && h.answers.is_empty()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cancel stays in force for every leaf; a second cancel changes nothing.
    #[test]
    fn cancel_is_level_triggered() {
        let mut inbox = Inbox::new();
        assert!(inbox.cancel());
        for _ in 0..3 {
            assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
        }
        assert!(!inbox.cancel());
        assert_eq!(inbox.cancel_state(), Delivery::Delivered);
    }

    /// A timeout reaches only leaves in its scope, outermost first, until
    /// its scope ends.
    #[test]
    fn timeouts_reach_their_scope_outermost_first_until_forgotten() {
        let (outer, inner) = (TimeoutId::new(0, 1), TimeoutId::new(1, 2));
        let mut inbox = Inbox::new();
        inbox.expire(inner);
        assert_eq!(inbox.take_interrupt(&[]), None, "no scope, no timeout");
        assert_eq!(
            inbox.take_interrupt(&[outer, inner]),
            Some(TrapError::TimedOut(inner))
        );
        inbox.expire(outer);
        assert_eq!(
            inbox.take_interrupt(&[outer, inner]),
            Some(TrapError::TimedOut(outer))
        );
        inbox.forget(outer);
        assert_eq!(
            inbox.take_interrupt(&[outer, inner]),
            Some(TrapError::TimedOut(inner))
        );
        assert!(inbox.was_delivered(inner));
    }

    /// The inbox crosses the trap slot twice per poll: it is one pointer, and
    /// an inbox that holds nothing again lets its box go.
    #[test]
    fn inbox_is_one_pointer_and_boxed_only_while_holding() {
        assert_eq!(std::mem::size_of::<Inbox>(), std::mem::size_of::<usize>());
        let id = TimeoutId::new(0, 1);
        let mut inbox = Inbox::new();
        assert!(inbox.held.is_none());
        inbox.expire(id);
        inbox.answer(3, TrapError::ResourceBusy);
        inbox.forget(id);
        assert!(inbox.held.is_some(), "the answer is still owed");
        assert_eq!(inbox.take_answer(3), Some(TrapError::ResourceBusy));
        assert!(inbox.held.is_none());
        inbox.throttle(TrapError::Cancelled);
        assert!(inbox.is_empty(), "a throttled interrupt is not news");
        assert_eq!(inbox.take_throttled(), Some(TrapError::Cancelled));
        assert!(inbox.held.is_none());
        inbox.answer(4, TrapError::ResourceBusy);
        inbox.scrub(4);
        assert!(inbox.held.is_none());
        inbox.cancel();
        assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
        assert!(inbox.held.is_some(), "a cancel stays in force");
        assert_eq!(inbox.cancel_state(), Delivery::Delivered);
    }
}
