//! The kernel's answers to immediate traps: the one entry point leaves use to
//! reach it while they run.

use std::cell::RefCell;
use std::task::Waker;

use log::trace;
use trapline_traps::{Handler, Reply, SpawnRequest, TaskId, Ticket, Trap, TrapError};

use crate::hooks::{HookList, Spawned};
use crate::run::contain;
use crate::state::State;

/// The kernel as its leaves see it: the state, behind a `RefCell` that is
/// borrowed only for the length of one trap.
pub(crate) struct Shared {
    pub state: RefCell<State>,
    /// Installed at build; empty unless someone watches.
    pub hooks: HookList,
}

impl Shared {
    /// Wakes the foreign wakers that fired parks queued, and drops the ones
    /// that released parks left behind, outside any borrow. Returns whether
    /// there were any (a woken waker may have made a task runnable).
    #[inline]
    pub(crate) fn wake_foreign(&self) -> bool {
        // The common case, after every trap and every poll: nothing.
        if !self.state.borrow().foreign_work() {
            return false;
        }
        self.wake_foreign_now();
        true
    }

    /// [`Shared::wake_foreign`] with work to do.
    fn wake_foreign_now(&self) {
        loop {
            let (wake, drop): (Vec<Waker>, Vec<Waker>) = {
                let mut st = self.state.borrow_mut();
                if !st.foreign_work() {
                    return;
                }
                (
                    std::mem::take(&mut st.foreign_wakes),
                    std::mem::take(&mut st.graveyard),
                )
            };
            for waker in wake {
                contain("a foreign waker", || waker.wake());
            }
            for waker in drop {
                contain("a foreign waker's drop", || std::mem::drop(waker));
            }
        }
    }

    fn answer(&self, current: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
        let mut state = self.state.borrow_mut();
        let running = current.ok_or(TrapError::Unsupported("no task is running"));
        Ok(match trap {
            Trap::Spawn(request) => {
                let SpawnRequest {
                    future,
                    name,
                    location,
                } = *request;
                if let Err(err) = state.can_spawn() {
                    drop(state);
                    drop(future); // user code: never under the borrow
                    return Err(err);
                }
                let id = state.spawn(Some(future));
                let named = Named(name.as_deref());
                match current {
                    Some(parent) => {
                        trace!(target: "trapline::trap", "task {} spawn {id}{named} at {location}", parent.serial())
                    }
                    None => trace!(target: "trapline::trap", "spawn {id}{named} at {location}"),
                }
                if self.hooks.on() {
                    let at = state.now();
                    drop(state); // hooks are user code
                    let spawned = Spawned {
                        name: name.as_deref(),
                        location,
                        parent: current,
                        at,
                    };
                    self.hooks.created(id, &spawned);
                }
                Reply::Task(id)
            }
            Trap::Cancel { task } => {
                let who = current.map_or(0, |c| c.serial());
                trace!(target: "trapline::trap", "task {who} cancel {task}");
                if Some(task) == current {
                    // The running task's inbox is on loan to the trap slot.
                    drop(state);
                    let done = trapline_traps::with_current_inbox(|i| i.cancel());
                    return Ok(Reply::Flag(done.unwrap_or(false)));
                }
                Reply::Flag(state.cancel(task))
            }
            Trap::SchedWake { queue, n } => Reply::Count(state.sched_wake(queue, n)),
            Trap::Clock => Reply::Time(state.now()),
            Trap::Current => Reply::Task(running?),
            Trap::SetTimeout { deadline } => Reply::Timeout(state.set_timeout(running?, deadline)),
            Trap::UnsetTimeout { id } => {
                state.unset_timeout(id, current);
                Reply::Unit
            }
            Trap::IoRelease { fd } => {
                state.io_release(fd);
                Reply::Unit
            }
            blocking => {
                return Err(TrapError::Unsupported(if blocking.is_blocking() {
                    "a blocking trap must be posted by a leaf, not called"
                } else {
                    "unknown trap"
                }))
            }
        })
    }
}

impl State {
    /// Whether foreign wakers wait to be woken or dropped outside the borrow
    /// (see [`Shared::wake_foreign`]).
    #[inline]
    pub(crate) fn foreign_work(&self) -> bool {
        !self.foreign_wakes.is_empty() || !self.graveyard.is_empty()
    }
}

/// A task's name as the trace shows it after its id: ` "echo"`, or nothing.
struct Named<'a>(Option<&'a str>);

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(name) => write!(f, " {name:?}"),
            None => Ok(()),
        }
    }
}

impl Handler for Shared {
    fn call(&self, current: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
        let reply = self.answer(current, trap);
        self.wake_foreign();
        reply
    }

    fn unpost(&self, ticket: Ticket) {
        self.state.borrow_mut().unpost(ticket.slot(), ticket.seq());
        self.wake_foreign();
    }
}
