//! A group's bookkeeping: who runs, who has finished, and how a task's end
//! reaches the owner (a `Notice` inside the task's future, a `SchedWait`
//! line for the owner).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::Location;
use std::rc::Weak;

use trapline_traps::{TaskId, TrapError};

use super::outcome::{Finished, GroupError, Policy, TaskFailure};
use crate::sync::{WaitList, Waiting};

pub(super) struct Member {
    pub(super) key: u64,
    pub(super) id: TaskId,
    /// A daemon's end is not one of the group's results.
    pub(super) daemon: bool,
    pub(super) cancelled: bool,
}

pub(super) struct State<T, E> {
    pub(super) running: Vec<Member>,
    pub(super) finished: VecDeque<Finished<T, E>>,
    pub(super) joined: bool,
    pub(super) next_key: u64,
}

pub(super) struct Inner<T, E> {
    pub(super) policy: Policy,
    pub(super) state: RefCell<State<T, E>>,
    pub(super) changes: WaitList<()>,
}

/// What a join decided.
pub(crate) type Decision<T, E> = Result<Option<T>, GroupError<E>>;

/// Tells the group, from inside a task, how the task ended. It lives in the
/// task's future, so it speaks even if the future is dropped unfinished.
pub(super) struct Notice<T, E> {
    pub(super) group: Weak<Inner<T, E>>,
    pub(super) key: u64,
    pub(super) told: bool,
}

impl<T, E> Notice<T, E> {
    pub(super) fn tell(&mut self, outcome: Option<Result<T, TaskFailure<E>>>) {
        self.told = true;
        if let Some(inner) = self.group.upgrade() {
            inner.ended(self.key, outcome);
        }
    }
}

impl<T, E> Drop for Notice<T, E> {
    fn drop(&mut self) {
        if !self.told {
            self.tell(Some(Err(TaskFailure::Dropped)));
        }
    }
}

impl<T, E> Inner<T, E> {
    /// Task `key` ended with `outcome` (`None` for a daemon): move it from
    /// running to finished, and wake the owner.
    pub(super) fn ended(&self, key: u64, outcome: Option<Result<T, TaskFailure<E>>>) {
        {
            let mut s = self.state.borrow_mut();
            let Some(at) = s.running.iter().position(|m| m.key == key) else {
                return; // spawn refused: it never joined the group
            };
            let member = s.running.remove(at);
            if let (false, Some(outcome)) = (member.daemon, outcome) {
                s.finished.push_back(Finished {
                    id: member.id,
                    outcome,
                    cancelled: member.cancelled,
                });
            }
        }
        for waiter in self.changes.take_all() {
            waiter.notify();
        }
    }

    /// A task of the group waiting on the group would wait for itself.
    pub(super) fn refuse_member(&self) -> Result<(), TrapError> {
        let me = trapline_traps::running();
        let s = self.state.borrow();
        if me.is_some() && s.running.iter().any(|m| Some(m.id) == me) {
            return Err(TrapError::Unsupported(
                "a task of a group cannot wait on its own group",
            ));
        }
        Ok(())
    }

    pub(super) fn working(&self) -> bool {
        self.state.borrow().running.iter().any(|m| !m.daemon)
    }

    /// Whether the join can decide now, and what.
    pub(super) fn decide(&self) -> Option<Decision<T, E>> {
        let mut s = self.state.borrow_mut();
        let working = s.running.iter().any(|m| !m.daemon);
        let pick = |s: &mut State<T, E>, at: usize| {
            let f = s.finished.remove(at).expect("an index just found");
            match f.outcome {
                Ok(v) => Ok(Some(v)),
                Err(failure) => Err(GroupError::Task { id: f.id, failure }),
            }
        };
        let failed = |f: &Finished<T, E>| f.outcome.is_err() && !f.cancelled;
        match self.policy {
            Policy::All => match s.finished.iter().position(failed) {
                Some(at) => Some(pick(&mut s, at)),
                None => (!working).then_some(Ok(None)),
            },
            Policy::Any => match s.finished.iter().position(|f| !f.cancelled) {
                Some(at) => Some(pick(&mut s, at)),
                None => (!working).then_some(Ok(None)),
            },
            Policy::FirstResult => {
                if let Some(at) = s.finished.iter().position(|f| f.outcome.is_ok()) {
                    return Some(pick(&mut s, at));
                }
                if working {
                    return None;
                }
                match s.finished.iter().position(failed) {
                    Some(at) => Some(pick(&mut s, at)),
                    None => Some(Ok(None)),
                }
            }
        }
    }

    /// Sends `Cancel` to every task still running and not yet cancelled, in
    /// spawn order, but `spare` (a member cancelling the rest of its group).
    pub(super) fn cancel_all(&self, spare: Option<TaskId>) {
        let ids: Vec<TaskId> = self
            .state
            .borrow_mut()
            .running
            .iter_mut()
            .filter(|m| Some(m.id) != spare && !m.cancelled)
            .map(|m| {
                m.cancelled = true;
                m.id
            })
            .collect();
        for id in ids {
            // Outside a kernel there is nothing left to cancel.
            let _ = trapline_traps::cancel(id);
        }
    }

    /// How many tasks run, not counting `spare`.
    pub(super) fn running_but(&self, spare: Option<TaskId>) -> usize {
        let s = self.state.borrow();
        s.running.iter().filter(|m| Some(m.id) != spare).count()
    }

    /// Waits until a task of the group ends.
    pub(super) async fn changed(
        &self,
        location: &'static Location<'static>,
    ) -> Result<(), TrapError> {
        let mut wait = ChangeWait {
            list: &self.changes,
            waiting: Waiting::new(self.changes.push(None), location),
        };
        wait.waiting.wait().await
    }
}

impl<T, E> Drop for Inner<T, E> {
    fn drop(&mut self) {
        // No asynchronous drop: cancel what is left; it ends on its own.
        self.cancel_all(None);
    }
}

/// A wait for the next completion; leaves the line when it goes.
struct ChangeWait<'a> {
    list: &'a WaitList<()>,
    waiting: Waiting<()>,
}

impl Drop for ChangeWait<'_> {
    fn drop(&mut self) {
        self.list.remove(self.waiting.entry());
    }
}
