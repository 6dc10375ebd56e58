//! Typed wrappers over the immediate traps.
//!
//! Each is one line over [`crate::call`]: it names the trap and unwraps the
//! kind of reply the trap promises. A kernel answering with another kind of
//! reply has broken its contract, which is a bug in the kernel and panics.

use std::borrow::Cow;
use std::os::fd::RawFd;
use std::panic::Location;
use std::time::Instant;

use crate::error::TrapError;
use crate::ids::{QueueId, TaskId, TimeoutId};
use crate::scope;
use crate::slot::call;
use crate::trap::{Reply, SpawnRequest, TaskFuture, Trap};

fn broken(trap: &'static str, reply: Reply) -> ! {
    panic!("trapline kernel invariant broken: {trap} answered with {reply:?}")
}

/// Starts a task running `future`. It runs when the caller next yields.
///
/// # Examples
///
/// Outside a kernel there is no one to start the task. Inside one, the kernel
/// answers with the new task's id; here a stand-in that always answers task 2.
///
/// ```
/// use std::rc::Rc;
/// use trapline_traps::{install, spawn, Handler, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct Spawner;
/// impl Handler for Spawner {
///     fn call(&self, _: Option<TaskId>, _trap: Trap) -> Result<Reply, TrapError> {
///         Ok(Reply::Task(TaskId::new(1, 2))) // a real kernel keeps the future and polls it
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// assert_eq!(spawn(Box::pin(async {})), Err(TrapError::NoKernel));
/// let _kernel = install(Rc::new(Spawner))?;
/// assert_eq!(spawn(Box::pin(async {}))?.to_string(), "task 2");
/// # Ok::<(), TrapError>(())
/// ```
#[track_caller]
pub fn spawn(future: TaskFuture) -> Result<TaskId, TrapError> {
    spawn_named(future, None, Location::caller())
}

/// Starts a task running `future`, named `name` and reported as spawned at
/// `location` (to hooks, monitors and the trace).
///
/// # Examples
///
/// A stand-in kernel that remembers the name it was given:
///
/// ```
/// use std::cell::RefCell;
/// use std::panic::Location;
/// use std::rc::Rc;
/// use trapline_traps::{install, spawn_named, Handler, Reply, TaskId, Ticket, Trap, TrapError};
///
/// #[derive(Default)]
/// struct Names(RefCell<Vec<String>>);
/// impl Handler for Names {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         if let Trap::Spawn(request) = trap {
///             self.0.borrow_mut().push(request.name.unwrap_or_default().into_owned());
///         }
///         Ok(Reply::Task(TaskId::new(1, 2)))
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let kernel = Rc::new(Names::default());
/// let _installed = install(kernel.clone())?;
/// spawn_named(Box::pin(async {}), Some("echo".into()), Location::caller())?;
/// assert_eq!(*kernel.0.borrow(), ["echo"]);
/// # Ok::<(), TrapError>(())
/// ```
pub fn spawn_named(
    future: TaskFuture,
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
) -> Result<TaskId, TrapError> {
    let request = SpawnRequest {
        future,
        name,
        location,
    };
    match call(Trap::Spawn(Box::new(request)))? {
        Reply::Task(id) => Ok(id),
        other => broken("Spawn", other),
    }
}

/// Cancels `task`. Returns whether this call was the one that cancelled it
/// (`false` if it had ended or was cancelled before).
///
/// # Examples
///
/// A stand-in kernel with one task, which can be cancelled once:
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use trapline_traps::{cancel, install, Handler, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct OneTask(Cell<bool>); // cancelled yet?
/// impl Handler for OneTask {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         match trap {
///             Trap::Cancel { .. } => Ok(Reply::Flag(!self.0.replace(true))),
///             other => Err(TrapError::Unsupported(other.name())),
///         }
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let _kernel = install(Rc::new(OneTask(Cell::new(false))))?;
/// let task = TaskId::new(0, 1);
/// assert!(cancel(task)?, "this call cancelled it");
/// assert!(!cancel(task)?, "cancelled before: nothing more to do");
/// # Ok::<(), TrapError>(())
/// ```
pub fn cancel(task: TaskId) -> Result<bool, TrapError> {
    match call(Trap::Cancel { task })? {
        Reply::Flag(done) => Ok(done),
        other => broken("Cancel", other),
    }
}

/// Wakes up to `n` tasks waiting in `queue`, oldest first; returns how many.
///
/// # Examples
///
/// A stand-in kernel in which no task waits anywhere:
///
/// ```
/// use std::rc::Rc;
/// use trapline_traps::{install, sched_wake, Handler, QueueId, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct Idle;
/// impl Handler for Idle {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         match trap {
///             Trap::SchedWake { .. } => Ok(Reply::Count(0)),
///             other => Err(TrapError::Unsupported(other.name())),
///         }
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let _kernel = install(Rc::new(Idle))?;
/// assert_eq!(sched_wake(QueueId::new(), 1)?, 0, "an empty queue wakes no one");
/// # Ok::<(), TrapError>(())
/// ```
pub fn sched_wake(queue: QueueId, n: usize) -> Result<usize, TrapError> {
    match call(Trap::SchedWake { queue, n })? {
        Reply::Count(n) => Ok(n),
        other => broken("SchedWake", other),
    }
}

/// The kernel's clock.
///
/// # Examples
///
/// The time is whatever the kernel says it is; here a stand-in whose clock
/// stands still:
///
/// ```
/// use std::rc::Rc;
/// use std::time::Instant;
/// use trapline_traps::{clock, install, Handler, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct Frozen(Instant);
/// impl Handler for Frozen {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         match trap {
///             Trap::Clock => Ok(Reply::Time(self.0)),
///             other => Err(TrapError::Unsupported(other.name())),
///         }
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let t0 = Instant::now();
/// let _kernel = install(Rc::new(Frozen(t0)))?;
/// assert_eq!(clock()?, t0);
/// assert_eq!(clock()?, t0, "the kernel's clock, not the wall clock");
/// # Ok::<(), TrapError>(())
/// ```
pub fn clock() -> Result<Instant, TrapError> {
    match call(Trap::Clock)? {
        Reply::Time(t) => Ok(t),
        other => broken("Clock", other),
    }
}

/// The running task.
///
/// # Examples
///
/// A kernel answers with the task it is polling, and refuses between polls:
///
/// ```
/// use std::rc::Rc;
/// use trapline_traps::{current, enter, install, leave, Handler, Inbox, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct Stub;
/// impl Handler for Stub {
///     fn call(&self, current: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         match (trap, current) {
///             (Trap::Current, Some(task)) => Ok(Reply::Task(task)),
///             (other, _) => Err(TrapError::Unsupported(other.name())),
///         }
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let _kernel = install(Rc::new(Stub))?;
/// let task = TaskId::new(0, 1);
/// enter(task, Inbox::new()); // the kernel begins a poll of `task`
/// assert_eq!(current()?, task);
/// let _inbox = leave(&mut Vec::new());
/// assert!(current().is_err(), "between polls no task runs");
/// # Ok::<(), TrapError>(())
/// ```
pub fn current() -> Result<TaskId, TrapError> {
    match call(Trap::Current)? {
        Reply::Task(id) => Ok(id),
        other => broken("Current", other),
    }
}

/// Arms a timeout for the running task.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use std::time::{Duration, Instant};
/// use trapline_traps::{install, set_timeout, Handler, Reply, TaskId, Ticket, TimeoutId, Trap, TrapError};
///
/// struct OneTimeout;
/// impl Handler for OneTimeout {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         match trap {
///             Trap::SetTimeout { .. } => Ok(Reply::Timeout(TimeoutId::new(0, 1))),
///             other => Err(TrapError::Unsupported(other.name())),
///         }
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let deadline = Instant::now() + Duration::from_secs(1);
/// assert_eq!(set_timeout(deadline), Err(TrapError::NoKernel));
/// let _kernel = install(Rc::new(OneTimeout))?;
/// assert_eq!(set_timeout(deadline)?.to_string(), "timeout 1");
/// # Ok::<(), TrapError>(())
/// ```
pub fn set_timeout(deadline: Instant) -> Result<TimeoutId, TrapError> {
    match call(Trap::SetTimeout { deadline })? {
        Reply::Timeout(id) => Ok(id),
        other => broken("SetTimeout", other),
    }
}

/// Disarms timeout `id` and forgets any expiry of it the task holds.
///
/// # Examples
///
/// A task whose leaf took the expiry of timeout `id`; unsetting it ends its
/// scope, and the task's inbox forgets it:
///
/// ```
/// use std::rc::Rc;
/// use trapline_traps::{enter, install, leave, timeout_delivered, unset_timeout};
/// use trapline_traps::{Handler, Inbox, Reply, TaskId, Ticket, TimeoutId, Trap, TrapError};
///
/// struct Stub; // answers `UnsetTimeout`, the only trap made here
/// impl Handler for Stub {
///     fn call(&self, _: Option<TaskId>, _: Trap) -> Result<Reply, TrapError> {
///         Ok(Reply::Unit)
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let id = TimeoutId::new(0, 1);
/// let mut inbox = Inbox::new();
/// inbox.expire(id);
/// assert_eq!(inbox.take_interrupt(&[id]), Some(TrapError::TimedOut(id)));
///
/// let _kernel = install(Rc::new(Stub))?;
/// enter(TaskId::new(0, 1), inbox);
/// assert!(timeout_delivered(id));
/// unset_timeout(id)?;
/// assert!(!timeout_delivered(id), "forgotten with its scope");
/// let _inbox = leave(&mut Vec::new());
/// # Ok::<(), TrapError>(())
/// ```
pub fn unset_timeout(id: TimeoutId) -> Result<(), TrapError> {
    scope::forget_timeout(id);
    call(Trap::UnsetTimeout { id }).map(drop)
}

/// Tells the kernel that `fd` is about to be closed.
///
/// # Examples
///
/// A socket's `Drop` calls this, then closes its fd. With no kernel there is
/// nothing to forget, and the error is ignored.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use trapline_traps::{install, io_release, Handler, Reply, TaskId, Ticket, Trap, TrapError};
///
/// #[derive(Default)]
/// struct Fds(RefCell<Vec<i32>>); // the fds it was told to forget
/// impl Handler for Fds {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         match trap {
///             Trap::IoRelease { fd } => {
///                 self.0.borrow_mut().push(fd);
///                 Ok(Reply::Unit)
///             }
///             other => Err(TrapError::Unsupported(other.name())),
///         }
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// assert_eq!(io_release(7), Err(TrapError::NoKernel));
/// let kernel = Rc::new(Fds::default());
/// let _installed = install(kernel.clone())?;
/// io_release(7)?;
/// assert_eq!(*kernel.0.borrow(), [7]);
/// # Ok::<(), TrapError>(())
/// ```
pub fn io_release(fd: RawFd) -> Result<(), TrapError> {
    call(Trap::IoRelease { fd }).map(drop)
}
