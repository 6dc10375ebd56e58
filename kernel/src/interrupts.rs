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

use log::trace;
use trapline_traps::{TaskId, TimeoutId, TrapError};

use crate::state::State;
use crate::task::SlotPlusOne;

/// The timeout scope a park trapped in, as the park keeps it (see the
/// Discussion above): the timeout's slot plus one (so that `None` costs no
/// room) and the low 32 bits of its serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScopeRef {
    slot: SlotPlusOne,
    serial: u32,
}

impl ScopeRef {
    /// The ref a park keeps for scope `id`.
    pub(crate) fn of(id: TimeoutId) -> ScopeRef {
        ScopeRef {
            slot: SlotPlusOne::new(id.index()),
            serial: id.serial() as u32,
        }
    }

    /// Whether this ref names timeout `id`.
    pub(crate) fn names(self, id: TimeoutId) -> bool {
        self == ScopeRef::of(id)
    }

    /// The slot of the timeout it names.
    fn slot(self) -> usize {
        self.slot.get() as usize
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use trapline_traps::enter_scope;

    use super::*;
    use crate::state::testing::{push_park, state, waiting_task};
    use crate::task::{On, RunState};

    /// A waiting task holding one park, trapped in `scope`.
    fn parked_in(st: &mut State, scope: Option<TimeoutId>) -> TaskId {
        let id = waiting_task(st);
        push_park(st, id, 1, On::FutureWait, scope.map(ScopeRef::of));
        id
    }

    /// Whether timeout `expired` resumes the task's park.
    fn resumes(st: &mut State, id: TaskId, expired: TimeoutId) -> bool {
        st.interrupt(id, TrapError::TimedOut(expired));
        let resumed = st.ready.contains(&id);
        st.ready.clear();
        st.task(id).unwrap().state = RunState::Waiting;
        resumed
    }

    /// A park keeps its scope in 8 bytes, and `None` costs nothing more.
    #[test]
    fn a_scope_ref_is_8_bytes() {
        assert_eq!(std::mem::size_of::<Option<ScopeRef>>(), 8);
    }

    /// A ref names its timeout, and no other in the same slot or with the
    /// same serial; only the serial's low 32 bits are kept.
    #[test]
    fn a_scope_ref_names_its_timeout() {
        let r = ScopeRef::of(TimeoutId::new(3, 7));
        assert!(r.names(TimeoutId::new(3, 7)));
        assert!(!r.names(TimeoutId::new(3, 8)));
        assert!(!r.names(TimeoutId::new(4, 7)));
        assert!(r.names(TimeoutId::new(3, 7 + (1 << 32))));
        assert!(ScopeRef::of(TimeoutId::new(u32::MAX, 1)).names(TimeoutId::new(u32::MAX, 1)));
    }

    /// A timeout reaches the parks in its scope, in scopes nested in it, and
    /// no other: not a sibling's, not an outer one's, not one outside all.
    #[test]
    fn a_timeout_reaches_the_parks_in_its_scope() {
        let mut st = state();
        let owner = st.spawn(None);
        let far = Instant::now() + Duration::from_secs(3600);
        let outer = st.set_timeout(owner, far);
        let (inner, sibling) = {
            let _scope = enter_scope(outer);
            (st.set_timeout(owner, far), st.set_timeout(owner, far))
        };
        let in_outer = parked_in(&mut st, Some(outer));
        let in_inner = parked_in(&mut st, Some(inner));
        let outside = parked_in(&mut st, None);
        assert!(resumes(&mut st, in_outer, outer));
        assert!(!resumes(&mut st, in_outer, inner));
        assert!(resumes(&mut st, in_inner, inner));
        assert!(resumes(&mut st, in_inner, outer));
        assert!(!resumes(&mut st, in_inner, sibling));
        assert!(!resumes(&mut st, outside, outer));
    }

    /// A park whose scope was unset (its guard forgotten, say) is reached
    /// by no timeout set later in the same slot, nor by one that was the
    /// unset one's parent.
    #[test]
    fn an_unset_scope_is_reached_by_no_later_timeout() {
        let mut st = state();
        let owner = st.spawn(None);
        let far = Instant::now() + Duration::from_secs(3600);
        let outer = st.set_timeout(owner, far);
        let gone = {
            let _scope = enter_scope(outer);
            st.set_timeout(owner, far)
        };
        let id = parked_in(&mut st, Some(gone));
        assert!(resumes(&mut st, id, outer));
        st.unset_timeout(gone, None);
        let later = st.set_timeout(owner, far);
        assert_eq!(later.index(), gone.index(), "the slot is reused");
        assert!(!resumes(&mut st, id, later));
        assert!(!resumes(&mut st, id, outer));
    }
}
