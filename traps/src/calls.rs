//! Typed wrappers over the immediate traps.
//!
//! Each is one line over [`crate::call`]: it names the trap and unwraps the
//! kind of reply the trap promises. A kernel answering with another kind of
//! reply has broken its contract, which is a bug in the kernel and panics.

use std::os::fd::RawFd;
use std::time::Instant;

use crate::error::TrapError;
use crate::ids::{QueueId, TaskId, TimeoutId};
use crate::slot::{self, call};
use crate::trap::{Reply, TaskFuture, Trap};

fn broken(trap: &'static str, reply: Reply) -> ! {
    panic!("trapline kernel invariant broken: {trap} answered with {reply:?}")
}

/// Starts a task running `future`. It runs when the caller next yields.
pub fn spawn(future: TaskFuture) -> Result<TaskId, TrapError> {
    match call(Trap::Spawn { future })? {
        Reply::Task(id) => Ok(id),
        other => broken("Spawn", other),
    }
}

/// Cancels `task`. Returns whether this call was the one that cancelled it
/// (`false` if it had ended or was cancelled before).
pub fn cancel(task: TaskId) -> Result<bool, TrapError> {
    match call(Trap::Cancel { task })? {
        Reply::Flag(done) => Ok(done),
        other => broken("Cancel", other),
    }
}

/// Wakes up to `n` tasks waiting in `queue`, oldest first; returns how many.
pub fn sched_wake(queue: QueueId, n: usize) -> Result<usize, TrapError> {
    match call(Trap::SchedWake { queue, n })? {
        Reply::Count(n) => Ok(n),
        other => broken("SchedWake", other),
    }
}

/// The kernel's clock.
pub fn clock() -> Result<Instant, TrapError> {
    match call(Trap::Clock)? {
        Reply::Time(t) => Ok(t),
        other => broken("Clock", other),
    }
}

/// The running task.
pub fn current() -> Result<TaskId, TrapError> {
    match call(Trap::Current)? {
        Reply::Task(id) => Ok(id),
        other => broken("Current", other),
    }
}

/// Arms a timeout for the running task.
pub fn set_timeout(deadline: Instant) -> Result<TimeoutId, TrapError> {
    match call(Trap::SetTimeout { deadline })? {
        Reply::Timeout(id) => Ok(id),
        other => broken("SetTimeout", other),
    }
}

/// Disarms timeout `id` and forgets any expiry of it the task holds.
pub fn unset_timeout(id: TimeoutId) -> Result<(), TrapError> {
    slot::forget_timeout(id);
    call(Trap::UnsetTimeout { id }).map(drop)
}

/// Tells the kernel that `fd` is about to be closed.
pub fn io_release(fd: RawFd) -> Result<(), TrapError> {
    call(Trap::IoRelease { fd }).map(drop)
}
