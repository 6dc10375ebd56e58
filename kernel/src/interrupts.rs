//! Interrupts: cancellation and timeouts, delivered at the trap.
//!
//! The kernel's part is small. It records the interrupt in the task's inbox
//! and, for every leaf parked in the interrupt's scope, leaves an answer
//! owed to that leaf's ticket and resumes it. The leaves do the rest (see
//! the inbox's rules in `trapline-traps`): an owed leaf that would still
//! wait takes its answer and completes with the error, undoing its own park.

use std::task::Waker;

use log::trace;
use trapline_traps::{TaskId, TimeoutId, TrapError};

use crate::state::State;
use crate::task::{On, Park};

/// What `interrupt` needs to know of a park.
struct ParkView {
    seq: u64,
    on: On,
    scope: Option<TimeoutId>,
    fired: bool,
    waker: Option<Waker>,
}

impl ParkView {
    fn of(park: &Park) -> ParkView {
        ParkView {
            seq: park.seq,
            on: park.on,
            scope: park.scope,
            fired: park.fired,
            waker: park.waker.clone(),
        }
    }
}

impl State {
    /// An interrupt (`Cancelled` or `TimedOut`) arrived for task `id`: every
    /// leaf parked in its scope is owed it and resumed.
    ///
    /// Discussion: the parks are *not* undone here. Each owed leaf gets an
    /// answer for its ticket; polled again, it retries its operation and, if
    /// it would still wait, takes the answer and completes with the error,
    /// undoing its own park. Parks outside the scope are left alone, so a
    /// sibling reader keeps its fd seat and a waiter its place in line. With
    /// no park at all (the task waits on a foreign waker, or is running),
    /// the interrupt stays pending for the next leaf that traps.
    pub(crate) fn interrupt(&mut self, id: TaskId, err: TrapError) {
        let Some(task) = self.task(id) else { return };
        let parked = !task.parks.is_empty();
        // What each park needs here, copied out: the loop below borrows `self`.
        let parks: Vec<ParkView> = task.parks.iter().map(ParkView::of).collect();
        let reached: Vec<&ParkView> = parks
            .iter()
            .filter(|p| self.in_scope(p.scope, &err))
            .collect();
        let mut owed = Vec::new();
        for park in &reached {
            // A timeout block's own `FutureWait` stands for the foreign
            // futures inside it: it is owed the interrupt only when no real
            // leaf inside the block is.
            let covered = park.on == On::FutureWait
                && reached.iter().any(|other| {
                    other.on != On::FutureWait && self.within(other.scope, park.scope)
                });
            if covered {
                continue;
            }
            owed.push(park.seq);
            if !park.fired {
                self.resume(id, park.waker.clone()); // a fired park was resumed already
            }
        }
        for park in parks {
            self.bury(park.waker);
        }
        trace!(target: "trapline::trap", "task {} interrupt {err}: owed to {} leaf(s)", id.serial(), owed.len());
        if let Some(task) = self.task(id) {
            task.inbox.owe(owed, err);
        }
        if !parked {
            // Waiting on a foreign waker, or not waiting: give it a look.
            self.schedule(id);
        }
    }

    /// Whether timeout scope `inner` lies within scope `outer` (or is it).
    fn within(&self, inner: Option<TimeoutId>, outer: Option<TimeoutId>) -> bool {
        let Some(outer) = outer else { return true };
        let mut at = inner;
        while let Some(id) = at {
            if id == outer {
                return true;
            }
            at = self.parent(id);
        }
        false
    }

    /// The timeout whose scope timeout `id` was set in.
    fn parent(&self, id: TimeoutId) -> Option<TimeoutId> {
        self.timeouts
            .get(id.index() as usize)
            .filter(|t| t.id == id)
            .and_then(|t| t.parent)
    }

    /// Whether a leaf that trapped in timeout scope `scope` is reached by `err`.
    fn in_scope(&self, scope: Option<TimeoutId>, err: &TrapError) -> bool {
        match *err {
            TrapError::TimedOut(expired) => self.within(scope, Some(expired)),
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
