//! What the kernel has to tell a task: interrupts and per-leaf answers.
//!
//! Discussion: interrupts (`Cancelled`, `TimedOut`) belong to the task, not
//! to a leaf, and reach leaves in one of two ways.
//!
//! - **Owed.** Every leaf waiting in the interrupt's scope when it arrives is
//!   owed it: the kernel leaves an answer for that leaf's ticket and resumes
//!   it. A cancelled `join!` of two sleeps sees both sleeps fail. Answers last
//!   for the task's next poll only ([`Inbox::settle`]).
//! - **Taken at the next trap.** Until some leaf has taken it, the interrupt
//!   is also there for any leaf about to trap in its scope: a leaf of a task
//!   that was running or woken by a foreign waker, or the leaf that traps
//!   after the owed ones made progress instead of waiting, or that was never
//!   polled again.
//!
//! Once taken, an interrupt is spent: the owed leaves still take their
//! answers in that poll, and any other leaf waits normally, so the task can
//! catch the error and wait again to clean up. A timeout is scoped (see [`crate::enter_scope`]), so
//! `join!(timeout_after(d, x), y)` never hands x's timeout to y. A cancel and
//! timeouts can be pending at once; cancellation wins, then the outermost
//! timeout.

use crate::error::TrapError;
use crate::ids::TimeoutId;

/// How far an interrupt has got.
///
/// # Examples
///
/// A cancellation's way through a task's inbox:
///
/// ```
/// use trapline_traps::{Delivery, Inbox, TrapError};
///
/// let mut inbox = Inbox::new();
/// assert_eq!(inbox.cancel_state(), Delivery::None);
/// inbox.cancel();
/// assert_eq!(inbox.cancel_state(), Delivery::Pending);
/// inbox.owe([1], TrapError::Cancelled); // leaf 1 was waiting
/// assert_eq!(inbox.cancel_state(), Delivery::Answered);
/// assert_eq!(inbox.take_answer(1), Some(TrapError::Cancelled));
/// assert_eq!(inbox.cancel_state(), Delivery::Delivered);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// No such interrupt.
    #[default]
    None,
    /// Arrived; the next leaf that traps in its scope takes it.
    Pending,
    /// Owed to the leaves that were waiting when it arrived. If none of them
    /// takes it, it becomes pending again.
    Answered,
    /// Taken by a leaf. Spent: a second cancel is ignored.
    Delivered,
}

/// One expired timeout of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expiry {
    id: TimeoutId,
    delivery: Delivery,
}

/// A task's pending interrupts and the answers owed to its leaves.
///
/// The kernel keeps one per task and lends it to the trap slot while the task
/// is polled.
///
/// # Examples
///
/// ```
/// use trapline_traps::{Delivery, Inbox, TrapError};
///
/// let mut inbox = Inbox::default();
/// assert!(inbox.cancel());
/// assert!(!inbox.cancel(), "a second cancel is ignored");
/// // Two leaves were waiting: both are owed the cancellation.
/// inbox.owe([7, 8], TrapError::Cancelled);
/// assert_eq!(inbox.take_answer(7), Some(TrapError::Cancelled));
/// assert_eq!(inbox.take_answer(8), Some(TrapError::Cancelled));
/// // Spent: a leaf that traps now, to clean up, waits normally.
/// assert_eq!(inbox.take_interrupt(&[]), None);
/// assert_eq!(inbox.cancel_state(), Delivery::Delivered);
/// ```
#[derive(Debug, Default)]
pub struct Inbox {
    cancel: Delivery,
    expired: Vec<Expiry>,
    answers: Vec<(u64, TrapError)>,
}

fn spend(delivery: &mut Delivery) {
    if *delivery != Delivery::None {
        *delivery = Delivery::Delivered;
    }
}

impl Inbox {
    /// An empty inbox.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Delivery, Inbox};
    ///
    /// // `const`, so a thread-local can start with one.
    /// const EMPTY: Inbox = Inbox::new();
    /// assert!(EMPTY.is_empty());
    /// assert_eq!(EMPTY.cancel_state(), Delivery::None);
    /// ```
    pub const fn new() -> Inbox {
        Inbox {
            cancel: Delivery::None,
            expired: Vec::new(),
            answers: Vec::new(),
        }
    }

    /// Marks the task cancelled. Returns `false`, changing nothing, if it was
    /// cancelled before (whether or not that cancel was taken yet).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// assert!(inbox.cancel());
    /// assert!(!inbox.cancel(), "cancelled before");
    /// assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
    /// assert!(!inbox.cancel(), "taken, and still cancelled before");
    /// ```
    pub fn cancel(&mut self) -> bool {
        if self.cancel != Delivery::None {
            return false;
        }
        self.cancel = Delivery::Pending;
        true
    }

    /// How far the task's cancellation has got.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Delivery, Inbox};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.cancel();
    /// assert_eq!(inbox.cancel_state(), Delivery::Pending, "no leaf has taken it");
    /// inbox.take_interrupt(&[]);
    /// assert_eq!(inbox.cancel_state(), Delivery::Delivered);
    /// ```
    pub fn cancel_state(&self) -> Delivery {
        self.cancel
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
    /// inbox.expire(id); // a late second report changes nothing
    /// assert_eq!(inbox.take_interrupt(&[id]), Some(TrapError::TimedOut(id)));
    /// assert_eq!(inbox.take_interrupt(&[id]), None, "one expiry, taken once");
    /// ```
    pub fn expire(&mut self, id: TimeoutId) {
        if !self.expired.iter().any(|e| e.id == id) {
            self.expired.push(Expiry {
                id,
                delivery: Delivery::Pending,
            });
        }
    }

    /// Forgets timeout `id`: its scope has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TimeoutId, TrapError};
    ///
    /// let id = TimeoutId::new(0, 1);
    /// let mut inbox = Inbox::new();
    /// inbox.expire(id);
    /// inbox.owe([5], TrapError::TimedOut(id)); // leaf 5 was waiting in the scope
    /// inbox.forget(id); // the scope ended before leaf 5 looked
    /// assert_eq!(inbox.take_answer(5), None);
    /// assert!(inbox.is_empty());
    /// ```
    pub fn forget(&mut self, id: TimeoutId) {
        self.expired.retain(|e| e.id != id);
        self.answers.retain(|(_, e)| *e != TrapError::TimedOut(id));
    }

    /// Whether timeout `id` expired and was taken by a leaf.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TimeoutId};
    ///
    /// let id = TimeoutId::new(0, 1);
    /// let mut inbox = Inbox::new();
    /// inbox.expire(id);
    /// assert!(!inbox.was_delivered(id), "expired, not yet taken");
    /// inbox.take_interrupt(&[id]);
    /// assert!(inbox.was_delivered(id));
    /// ```
    pub fn was_delivered(&self, id: TimeoutId) -> bool {
        self.expired
            .iter()
            .any(|e| e.id == id && e.delivery == Delivery::Delivered)
    }

    fn delivery(&mut self, err: &TrapError) -> Option<&mut Delivery> {
        match *err {
            TrapError::Cancelled => Some(&mut self.cancel),
            TrapError::TimedOut(id) => self
                .expired
                .iter_mut()
                .find(|e| e.id == id)
                .map(|e| &mut e.delivery),
            _ => None,
        }
    }

    /// Leaves interrupt `err` (already recorded with [`Inbox::cancel`] or
    /// [`Inbox::expire`]) as an answer for each waiting leaf in `seqs`.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.cancel();
    /// inbox.owe([7, 8], TrapError::Cancelled); // leaves 7 and 8 were waiting
    /// assert_eq!(inbox.take_answer(8), Some(TrapError::Cancelled));
    /// assert_eq!(inbox.take_answer(7), Some(TrapError::Cancelled));
    /// assert_eq!(inbox.take_interrupt(&[]), None, "spent: a cleanup leaf waits");
    /// ```
    pub fn owe(&mut self, seqs: impl IntoIterator<Item = u64>, err: TrapError) {
        let before = self.answers.len();
        for seq in seqs {
            self.answers.push((seq, err.clone()));
        }
        if self.answers.len() > before {
            if let Some(d) = self.delivery(&err) {
                if *d == Delivery::Pending {
                    *d = Delivery::Answered;
                }
            }
        }
    }

    /// Leaves a leaf-specific answer (such as `ResourceBusy`) for leaf `seq`.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.answer(3, TrapError::ResourceBusy); // leaf 3 asked for a taken fd seat
    /// assert_eq!(inbox.take_answer(4), None, "not for leaf 4");
    /// assert_eq!(inbox.take_answer(3), Some(TrapError::ResourceBusy));
    /// assert!(inbox.is_empty());
    /// ```
    pub fn answer(&mut self, seq: u64, err: TrapError) {
        self.answers.push((seq, err));
    }

    /// Takes the answer left for leaf `seq`, if any (a cancellation before
    /// anything else). Taking an interrupt spends it.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.answer(3, TrapError::ResourceBusy);
    /// inbox.cancel();
    /// inbox.owe([3], TrapError::Cancelled);
    /// assert_eq!(inbox.take_answer(3), Some(TrapError::Cancelled), "cancellation first");
    /// assert_eq!(inbox.take_answer(3), Some(TrapError::ResourceBusy));
    /// assert_eq!(inbox.take_answer(3), None);
    /// ```
    pub fn take_answer(&mut self, seq: u64) -> Option<TrapError> {
        let mine = |(s, _): &(u64, TrapError)| *s == seq;
        let at = self
            .answers
            .iter()
            .position(|a| mine(a) && a.1 == TrapError::Cancelled)
            .or_else(|| self.answers.iter().position(mine))?;
        let err = self.answers.remove(at).1;
        if let Some(d) = self.delivery(&err) {
            spend(d);
        }
        Some(err)
    }

    /// Takes the answer left for leaf `seq` that applies inside timeout
    /// `scopes` (outermost first): a `TimedOut` answer for a timeout that is
    /// not in force where the leaf is polled now is dropped, never handed over.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TimeoutId, TrapError};
    ///
    /// let id = TimeoutId::new(0, 1);
    /// let mut inbox = Inbox::new();
    /// inbox.expire(id);
    /// inbox.owe([3], TrapError::TimedOut(id));
    /// assert_eq!(inbox.take_answer_in(3, &[]), None, "polled outside the scope");
    /// assert_eq!(inbox.take_interrupt(&[id]), Some(TrapError::TimedOut(id)), "pending again");
    /// ```
    pub fn take_answer_in(&mut self, seq: u64, scopes: &[TimeoutId]) -> Option<TrapError> {
        let out_of_scope = |(s, e): &(u64, TrapError)| {
            *s == seq && matches!(e, TrapError::TimedOut(id) if !scopes.contains(id))
        };
        while let Some(at) = self.answers.iter().position(out_of_scope) {
            let err = self.answers.remove(at).1;
            self.unowe(&err);
        }
        self.take_answer(seq)
    }

    /// An answer for `err` was dropped untaken: if no leaf is owed it any
    /// more and none took it, it is pending again.
    fn unowe(&mut self, err: &TrapError) {
        let still_owed = self.answers.iter().any(|(_, e)| e == err);
        if let Some(d) = self.delivery(err) {
            if *d == Delivery::Answered && !still_owed {
                *d = Delivery::Pending;
            }
        }
    }

    /// Ends the poll that owed interrupts were for: answers not taken in it
    /// are dropped (their leaves were not polled, or made progress), and an
    /// interrupt no leaf took is pending again, for the next leaf that traps.
    /// Leaf-specific answers (`ResourceBusy`) stay.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Delivery, Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.cancel();
    /// inbox.owe([1], TrapError::Cancelled);
    /// inbox.answer(2, TrapError::ResourceBusy);
    /// inbox.settle(); // leaf 1 was not polled
    /// assert_eq!(inbox.cancel_state(), Delivery::Pending);
    /// assert_eq!(inbox.take_answer(1), None);
    /// assert_eq!(inbox.take_answer(2), Some(TrapError::ResourceBusy));
    /// ```
    pub fn settle(&mut self) {
        let interrupt = |e: &TrapError| matches!(e, TrapError::Cancelled | TrapError::TimedOut(_));
        self.answers.retain(|(_, e)| !interrupt(e));
        if self.cancel == Delivery::Answered {
            self.cancel = Delivery::Pending;
        }
        for e in &mut self.expired {
            if e.delivery == Delivery::Answered {
                e.delivery = Delivery::Pending;
            }
        }
    }

    /// Drops the answers left for leaf `seq` untaken (the leaf completed, or
    /// was dropped). An interrupt none of its owed leaves took is pending again.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Delivery, Inbox, TrapError};
    ///
    /// let mut inbox = Inbox::new();
    /// inbox.cancel();
    /// inbox.owe([7], TrapError::Cancelled);
    /// inbox.scrub(7); // leaf 7 could go on, and completed without looking
    /// assert_eq!(inbox.cancel_state(), Delivery::Pending);
    /// assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled), "the next leaf to trap");
    /// ```
    pub fn scrub(&mut self, seq: u64) {
        while let Some(at) = self.answers.iter().position(|(s, _)| *s == seq) {
            let err = self.answers.remove(at).1;
            self.unowe(&err);
        }
    }

    /// Takes the interrupt a leaf about to trap must see, given the timeout
    /// scopes it is polled in (outermost first): an unspent cancel first
    /// (pending or owed), then the outermost unspent timeout in scope.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{Inbox, TimeoutId, TrapError};
    ///
    /// let (outer, inner) = (TimeoutId::new(0, 1), TimeoutId::new(1, 2));
    /// let mut inbox = Inbox::new();
    /// inbox.expire(inner);
    /// inbox.cancel();
    /// assert_eq!(inbox.take_interrupt(&[outer, inner]), Some(TrapError::Cancelled), "cancel first");
    /// assert_eq!(inbox.take_interrupt(&[outer]), None, "outside inner's scope");
    /// assert_eq!(inbox.take_interrupt(&[outer, inner]), Some(TrapError::TimedOut(inner)));
    /// ```
    pub fn take_interrupt(&mut self, scopes: &[TimeoutId]) -> Option<TrapError> {
        // An owed interrupt is takeable too: the leaves it is owed to may not
        // be polled again (a future polled once and left aside), and the
        // leaf trapping now is as much inside the interrupted work as they are.
        let open = |d: Delivery| matches!(d, Delivery::Pending | Delivery::Answered);
        if open(self.cancel) {
            self.cancel = Delivery::Delivered;
            return Some(TrapError::Cancelled);
        }
        for id in scopes {
            let pending = |e: &&mut Expiry| e.id == *id && open(e.delivery);
            if let Some(e) = self.expired.iter_mut().find(pending) {
                e.delivery = Delivery::Delivered;
                return Some(TrapError::TimedOut(*id));
            }
        }
        None
    }

    /// Whether the inbox holds nothing at all.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::Inbox;
    ///
    /// let mut inbox = Inbox::new();
    /// assert!(inbox.is_empty());
    /// inbox.cancel();
    /// assert!(!inbox.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cancel == Delivery::None && self.expired.is_empty() && self.answers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owed interrupt that no leaf takes (each could progress) becomes
    /// pending again, for the next leaf that traps.
    #[test]
    fn untaken_answers_fall_back_to_pending() {
        let mut inbox = Inbox::new();
        inbox.cancel();
        inbox.owe([1, 2], TrapError::Cancelled);
        inbox.scrub(1);
        assert_eq!(inbox.cancel_state(), Delivery::Answered);
        inbox.scrub(2);
        assert_eq!(inbox.cancel_state(), Delivery::Pending);
        assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
        assert_eq!(inbox.take_interrupt(&[]), None, "spent");
    }

    /// While owed and untaken, an interrupt is also there for a leaf that
    /// traps; once taken, the owed leaves still get their answers, and no
    /// one else does.
    #[test]
    fn owed_interrupt_is_taken_at_the_next_trap_too() {
        let mut inbox = Inbox::new();
        inbox.cancel();
        inbox.owe([1], TrapError::Cancelled);
        assert_eq!(inbox.take_interrupt(&[]), Some(TrapError::Cancelled));
        assert_eq!(inbox.take_answer(1), Some(TrapError::Cancelled));
        assert_eq!(inbox.take_interrupt(&[]), None, "spent");
    }

    /// A timeout reaches only leaves in its scope, outermost first.
    #[test]
    fn timeouts_reach_their_scope_outermost_first() {
        let (outer, inner) = (TimeoutId::new(0, 1), TimeoutId::new(1, 2));
        let mut inbox = Inbox::new();
        inbox.expire(inner);
        inbox.expire(outer);
        assert_eq!(inbox.take_interrupt(&[]), None, "no scope, no timeout");
        assert_eq!(
            inbox.take_interrupt(&[outer, inner]),
            Some(TrapError::TimedOut(outer))
        );
        assert_eq!(
            inbox.take_interrupt(&[outer, inner]),
            Some(TrapError::TimedOut(inner))
        );
        assert_eq!(inbox.take_interrupt(&[outer, inner]), None);
        assert!(inbox.was_delivered(outer) && inbox.was_delivered(inner));
        inbox.forget(outer);
        assert!(!inbox.was_delivered(outer) && inbox.was_delivered(inner));
    }
}
