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

use log::trace;
use trapline_traps::{TaskId, TimeoutId, TrapError};

use crate::state::State;

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
