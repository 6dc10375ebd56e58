//! A group's bookkeeping: who runs, who has finished, and how a task's end
//! reaches the owner (a `Notice` inside the task's future, a `SchedWait`
//! line for the owner).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::panic::Location;
use std::rc::Weak;

use trapline_traps::{TaskId, TrapError};

use super::outcome::{Finished, GroupError, Policy, TaskFailure};
use crate::sync::{WaitList, Waiting};

pub(super) struct Member {
    pub(super) id: TaskId,
    /// A daemon's end is not one of the group's results.
    pub(super) daemon: bool,
    pub(super) cancelled: bool,
}

/// Who runs and who has finished, kept so that a task's end, a cancel and
/// a join's question cost no scan of the whole group: a group can hold
/// every connection of a server.
pub(super) struct State<T, E> {
    /// The running tasks by key; keys grow in spawn order.
    running: BTreeMap<u64, Member>,
    /// The keys of running tasks not yet sent `Cancel`, in spawn order.
    uncancelled: BTreeSet<u64>,
    /// The ids of the running tasks (is the caller one of them?).
    ids: HashSet<TaskId>,
    /// How many running tasks are not daemons.
    workers: usize,
    pub(super) finished: Finishes<T, E>,
    pub(super) joined: bool,
    pub(super) next_key: u64,
}

impl<T, E> State<T, E> {
    pub(super) fn new() -> State<T, E> {
        State {
            running: BTreeMap::new(),
            uncancelled: BTreeSet::new(),
            ids: HashSet::new(),
            workers: 0,
            finished: Finishes::default(),
            joined: false,
            next_key: 0,
        }
    }

    /// How many tasks (daemons included) run.
    pub(super) fn running(&self) -> usize {
        self.running.len()
    }

    /// Task `key` started as `id`.
    pub(super) fn enroll(&mut self, key: u64, id: TaskId, daemon: bool) {
        self.running.insert(
            key,
            Member {
                id,
                daemon,
                cancelled: false,
            },
        );
        self.uncancelled.insert(key);
        self.ids.insert(id);
        self.workers += usize::from(!daemon);
    }

    /// Task `key` ended: it leaves the running.
    fn leave(&mut self, key: u64) -> Option<Member> {
        let member = self.running.remove(&key)?;
        self.uncancelled.remove(&key);
        self.ids.remove(&member.id);
        self.workers -= usize::from(!member.daemon);
        Some(member)
    }
}

/// The completions not yet taken, in the order the tasks ended, with counts
/// of the kinds a join looks for (so it scans only once it has an answer).
pub(super) struct Finishes<T, E> {
    list: VecDeque<Finished<T, E>>,
    /// Successes.
    ok: usize,
    /// Failures of tasks that were not cancelled.
    failed: usize,
    /// Completions of tasks that were not cancelled.
    fresh: usize,
}

impl<T, E> Default for Finishes<T, E> {
    fn default() -> Self {
        Finishes {
            list: VecDeque::new(),
            ok: 0,
            failed: 0,
            fresh: 0,
        }
    }
}

fn failed<T, E>(f: &Finished<T, E>) -> bool {
    f.outcome.is_err() && !f.cancelled
}

impl<T, E> Finishes<T, E> {
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    fn count(&mut self, f: &Finished<T, E>, add: bool) {
        let step = |n: &mut usize, yes: bool| {
            if yes {
                *n = if add { *n + 1 } else { *n - 1 };
            }
        };
        step(&mut self.ok, f.outcome.is_ok());
        step(&mut self.failed, failed(f));
        step(&mut self.fresh, !f.cancelled);
    }

    fn push_back(&mut self, f: Finished<T, E>) {
        self.count(&f, true);
        self.list.push_back(f);
    }

    pub(super) fn pop_front(&mut self) -> Option<Finished<T, E>> {
        let f = self.list.pop_front()?;
        self.count(&f, false);
        Some(f)
    }

    /// Takes out the first completion that `wanted` accepts.
    fn take_first(&mut self, wanted: impl Fn(&Finished<T, E>) -> bool) -> Option<Finished<T, E>> {
        let at = self.list.iter().position(wanted)?;
        let f = self.list.remove(at)?;
        self.count(&f, false);
        Some(f)
    }

    pub(super) fn drain(&mut self) -> Vec<Finished<T, E>> {
        let all: Vec<_> = self.list.drain(..).collect();
        (self.ok, self.failed, self.fresh) = (0, 0, 0);
        all
    }
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
            let Some(member) = s.leave(key) else {
                return; // spawn refused: it never joined the group
            };
            if let (false, Some(outcome)) = (member.daemon, outcome) {
                s.finished.push_back(Finished {
                    id: member.id,
                    outcome,
                    cancelled: member.cancelled,
                });
            }
        }
        while let Some(waiter) = self.changes.pop_front() {
            waiter.notify();
        }
    }

    /// A task of the group waiting on the group would wait for itself.
    pub(super) fn refuse_member(&self) -> Result<(), TrapError> {
        let me = trapline_traps::running();
        if me.is_some_and(|me| self.state.borrow().ids.contains(&me)) {
            return Err(TrapError::Unsupported(
                "a task of a group cannot wait on its own group",
            ));
        }
        Ok(())
    }

    pub(super) fn working(&self) -> bool {
        self.state.borrow().workers > 0
    }

    /// Whether the join can decide now, and what.
    pub(super) fn decide(&self) -> Option<Decision<T, E>> {
        let mut s = self.state.borrow_mut();
        let working = s.workers > 0;
        let f = &mut s.finished;
        let picked = match self.policy {
            Policy::All if f.failed > 0 => f.take_first(failed),
            Policy::Any if f.fresh > 0 => f.take_first(|f| !f.cancelled),
            Policy::FirstResult if f.ok > 0 => f.take_first(|f| f.outcome.is_ok()),
            Policy::FirstResult if !working && f.failed > 0 => f.take_first(failed),
            _ if working => return None,
            _ => return Some(Ok(None)),
        };
        let f = picked.expect("a completion just counted");
        Some(match f.outcome {
            Ok(v) => Ok(Some(v)),
            Err(failure) => Err(GroupError::Task { id: f.id, failure }),
        })
    }

    /// Sends `Cancel` to every task still running and not yet cancelled, in
    /// spawn order, but `spare` (a member cancelling the rest of its group).
    pub(super) fn cancel_all(&self, spare: Option<TaskId>) {
        let ids: Vec<TaskId> = {
            let mut s = self.state.borrow_mut();
            let State {
                running,
                uncancelled,
                ..
            } = &mut *s;
            let mut ids = Vec::new();
            uncancelled.retain(|key| {
                let member = running.get_mut(key).expect("an uncancelled task runs");
                if Some(member.id) == spare {
                    return true;
                }
                member.cancelled = true;
                ids.push(member.id);
                false
            });
            ids
        };
        for id in ids {
            // Outside a kernel there is nothing left to cancel.
            let _ = trapline_traps::cancel(id);
        }
    }

    /// How many tasks run, not counting `spare`.
    pub(super) fn running_but(&self, spare: Option<TaskId>) -> usize {
        let s = self.state.borrow();
        let spared = spare.is_some_and(|id| s.ids.contains(&id));
        s.running.len() - usize::from(spared)
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
