//! Interrupts: cancellation and timeouts, delivered at the trap.
//!
//! The kernel's part is small. The interrupt is recorded in the task's inbox
//! (where it stays in force: see the inbox's rules in `trapline-traps`), and
//! every leaf parked in its scope is resumed. Polled again, each such leaf
//! retries its operation and, if it would still wait, completes with the
//! error, undoing its own park.
//!
//! Discussion: the parks are *not* undone here. Parks outside the
//! interrupt's scope are not even touched, so a sibling reader keeps its fd
//! seat and a waiter its place in line.
//!
//! Discussion: a park keeps the timeout scope it trapped in as a
//! [`ScopeRef`], 8 bytes, not as the scope's `TimeoutId` (16): the slot of
//! the timeout and the low 32 bits of its serial. Matched against the
//! timeouts in force, it names the right one whenever that one is still
//! set: its slot holds it, and no other timeout in force shares the slot.
//! Once the scope's timeout is unset (a `timeout_after` ended, or a scope
//! guard was forgotten and its timeout unset regardless) the park's ref
//! names nothing, unless the slot has been taken by a timeout whose serial
//! agrees with the unset one in its low 32 bits: 2^32 timeouts set in the
//! process since, while that park still waits. Even then the harm is one
//! spurious resume: the leaf, polled again, takes an interrupt only against
//! the full ids of the scopes it is polled in (`Inbox::take_interrupt`), so
//! it waits again, and it never takes a timeout it is not inside.

use std::num::NonZeroU32;

use log::trace;
use trapline_traps::{TaskId, TimeoutId, TrapError};

use crate::state::State;

/// The timeout scope a park trapped in, as the park keeps it (see the
/// Discussion above): the timeout's slot plus one (so that `None` costs no
/// room) and the low 32 bits of its serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScopeRef {
    slot: NonZeroU32,
    serial: u32,
}

impl ScopeRef {
    /// The ref a park keeps for scope `id`.
    pub(crate) fn of(id: TimeoutId) -> ScopeRef {
        // Timeout slots stay far below 2^32 - 1 (each one holds a record
        // in memory), so one more fits; saturating keeps it total.
        ScopeRef {
            slot: NonZeroU32::MIN.saturating_add(id.index()),
            serial: id.serial() as u32,
        }
    }

    /// Whether this ref names timeout `id`.
    pub(crate) fn names(self, id: TimeoutId) -> bool {
        self == ScopeRef::of(id)
    }

    /// The slot of the timeout it names.
    fn slot(self) -> usize {
        (self.slot.get() - 1) as usize
    }
}

impl State {
    /// An interrupt (`Cancelled` or `TimedOut`), already recorded in task
    /// `id`'s inbox, arrived: resume every leaf parked in its scope. With no
    /// park at all (the task waits on a foreign waker, or is running), the
    /// task is given a look; the interrupt waits in its inbox for the next
    /// leaf that would wait.
    pub(crate) fn interrupt(&mut self, id: TaskId, err: TrapError) {
        let Some(task) = self.task(id) else { return };
        let parks: Vec<_> = task
            .parks
            .iter()
            .map(|p| (p.scope, p.waker.clone(), p.on, p.location))
            .collect();
        if parks.is_empty() {
            trace!(target: "trapline::trap", "task {} interrupt ({err}): not parked, for its next trap", id.serial());
            self.schedule(id);
            return;
        }
        for (scope, waker, on, location) in parks {
            if self.in_scope(scope, &err) {
                trace!(target: "trapline::trap", "task {} resume {}: {err} (trapped at {location})", id.serial(), on.resumed());
                self.resume(id, waker);
            } else {
                self.bury(waker);
            }
        }
    }

    /// Whether the scope a park trapped in lies within timeout `outer`'s
    /// scope (or is it).
    fn within(&self, scope: Option<ScopeRef>, outer: TimeoutId) -> bool {
        // An unset timeout is not `outer` (which is set) nor inside it.
        let mut at = scope.and_then(|s| self.set_timeout_named(s));
        while let Some(id) = at {
            if id == outer {
                return true;
            }
            at = self.parent(id);
        }
        false
    }

    /// The timeout in force that `scope` names, if it is still set.
    fn set_timeout_named(&self, scope: ScopeRef) -> Option<TimeoutId> {
        let id = self.timeouts.get(scope.slot())?.id;
        scope.names(id).then_some(id)
    }

    /// The timeout whose scope timeout `id` was set in.
    fn parent(&self, id: TimeoutId) -> Option<TimeoutId> {
        self.timeouts
            .get(id.index() as usize)
            .filter(|t| t.id == id)
            .and_then(|t| t.parent)
    }

    /// Whether a leaf that trapped in timeout scope `scope` is reached by `err`.
    fn in_scope(&self, scope: Option<ScopeRef>, err: &TrapError) -> bool {
        match *err {
            TrapError::TimedOut(expired) => self.within(scope, expired),
            _ => true, // a cancellation reaches every leaf
        }
    }

    /// Cancels task `id` (not the running one: its inbox is in the trap slot).
    pub(crate) fn cancel(&mut self, id: TaskId) -> bool {
        let Some(task) = self.task(id) else {
            return false;
        };
        if !task.inbox.cancel() {
            return false;
        }
        self.interrupt(id, TrapError::Cancelled);
        true
    }
}
