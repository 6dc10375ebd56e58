//! The closed vocabulary of requests a leaf can make of its kernel.
//!
//! Blocking traps are *posted*: the leaf puts the request in the trap slot and
//! returns `Pending`, and the kernel parks the task under it when the poll
//! returns. Immediate traps are *called*: the kernel answers them at once,
//! while the leaf waits on the line.
//!
//! Discussion: readiness carries no value. When a blocking trap fires the
//! kernel only makes the task runnable again; the leaf, polled once more,
//! re-checks its own condition (an I/O leaf retries its syscall, a sleep reads
//! the clock) and traps again if it must. That is why a spurious poll is always
//! harmless, and why a naive loop that just polls again works too (see the
//! `by_hand` example of the `trapline` package).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::os::fd::RawFd;
use std::panic::Location;
use std::pin::Pin;
use std::task::Waker;
use std::time::Instant;

use crate::ids::{QueueId, TaskId, TimeoutId};

/// A task's body as the kernel holds it: boxed, pinned, producing nothing.
/// Whatever a task returns travels to its joiner through the facade's own slot.
///
/// # Examples
///
/// A task body hands its result over through a slot of its own, and need not
/// be `Send`:
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::task::{Context, Waker};
/// use trapline_traps::TaskFuture;
///
/// let result = Rc::new(Cell::new(None));
/// let slot = result.clone();
/// let mut body: TaskFuture = Box::pin(async move { slot.set(Some(6 * 7)) });
/// assert!(body.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
/// assert_eq!(result.get(), Some(42));
/// ```
pub type TaskFuture = Pin<Box<dyn Future<Output = ()>>>;

/// One request a leaf future makes of its kernel.
///
/// The first eight variants block: they are posted with [`crate::Leaf::trap`].
/// The rest are immediate: they are answered synchronously through
/// [`crate::call`] and the typed helpers beside it.
///
/// Every blocking trap resumes with nothing but the chance to look again.
/// An interrupt (`Cancelled`, or `TimedOut` for a leaf inside the timeout's
/// scope) resumes every leaf waiting when it arrives and stays in force:
/// every leaf that would wait fails with it, outside a shield (see
/// [`crate::Inbox`]). "Undone" below is
/// what happens to the park when its leaf completes or is dropped, the way an
/// interrupted leaf ends: the kernel takes back what the park holds.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use trapline_traps::Trap;
///
/// let t = Trap::ReadWait { fd: 7 };
/// assert!(t.is_blocking());
/// assert_eq!(t.to_string(), "ReadWait(fd 7)");
/// assert!(!Trap::Clock.is_blocking());
/// ```
pub enum Trap {
    /// Wait until `deadline`.
    ///
    /// Parks the task in the timer queue. Woken when the clock reaches the
    /// deadline. Undone: the timer entry goes stale, and is skipped when it
    /// comes up. The leaf resumes and compares the clock itself.
    Sleep {
        /// When to wake.
        deadline: Instant,
    },
    /// Wait until `fd` can be read.
    ///
    /// Registers the fd with the kernel's poller on first use (edge-triggered,
    /// once for its life) and parks the task as the fd's one reader. Woken by a
    /// readable, read-closed or error event. If another leaf is already the
    /// fd's reader, the leaf gets `ResourceBusy` instead. Undone: the reader
    /// seat is emptied; the registration stays until `IoRelease`.
    /// The leaf resumes by retrying its syscall.
    ///
    /// A leaf must have seen `WouldBlock` before it traps: registration is
    /// edge-triggered, and only that syscall guarantees a fresh edge.
    ReadWait {
        /// The file descriptor.
        fd: RawFd,
    },
    /// Wait until `fd` can be read, *without having tried*: the leaf's
    /// previous read of this stream came back short, so the receive queue was
    /// empty then and the `EAGAIN` read in between would be a wasted syscall.
    ///
    /// Parks like `ReadWait`, in the same reader seat, unless the kernel has
    /// heard the fd become readable (or end, or fail) since it last woke a
    /// reader there: then the task is resumed at once, to try. The leaf
    /// resumes by trying its syscall, and traps `ReadWait` if it blocks.
    ///
    /// Only a socket whose short read means "drained" may post it (trapline's
    /// TCP streams; a Unix stream's read also stops short at passed fds), and
    /// only when no other read of it waits; a read abandoned after its park
    /// fired must try first next time, because the edge it took may not
    /// have been read. Refused (an interrupt), the leaf still tries its
    /// syscall before it fails.
    ReadDrained {
        /// The file descriptor.
        fd: RawFd,
    },
    /// Wait until `fd` can be written. The mirror of `ReadWait`, with the
    /// fd's one writer seat.
    WriteWait {
        /// The file descriptor.
        fd: RawFd,
    },
    /// Wait in a FIFO wait queue until `SchedWake` names this queue.
    ///
    /// Parks the task at the back of `queue`. Woken by `SchedWake` in FIFO
    /// order. Undone: the task leaves the queue, so a cancelled waiter is
    /// never woken in place of a live one. The leaf resumes by
    /// re-checking the state of its primitive.
    SchedWait {
        /// The queue to wait in.
        queue: QueueId,
    },
    /// Wait until `task` has ended.
    ///
    /// Parks the task among the target's joiners (or resumes it at once if the
    /// target is already gone). Woken when the target completes, panics or is
    /// dropped. Undone: it leaves the joiners; the target runs on.
    /// The leaf resumes by reading the target's result slot.
    Join {
        /// The task to wait for.
        task: TaskId,
    },
    /// Wait on a foreign future: something outside the trap vocabulary will
    /// wake the task through its `Waker`.
    ///
    /// Parks nothing but a marker. Woken only by an interrupt (cancel or
    /// timeout) — the foreign future's own waker wakes the task otherwise:
    /// it lets an interrupt reach a subtree that waits on a future that never
    /// traps. Undone: nothing to take back. The leaf resumes by polling that
    /// future again.
    FutureWait,
    /// Step aside: go to the back of the ready queue.
    ///
    /// Parks nothing; the task is made ready again at once and runs in the
    /// next pass, after the kernel has looked at I/O and timers. Nothing to
    /// cancel. The leaf resumes with `Ok`.
    Yield,

    /// Start a new task: the request says what it runs and what to call it.
    /// Answers [`Reply::Task`].
    ///
    /// Boxed, so that this rare trap does not make every trap (and every
    /// [`Post`]) as big as itself: the kernel moves a `Trap` for each blocking
    /// trap, and a spawn allocates anyway.
    Spawn(Box<SpawnRequest>),
    /// Cancel `task`: delivered as `Cancelled` at its current or next
    /// blocking trap. A second cancel of the same task is ignored. Answers
    /// [`Reply::Flag`]: whether this call was the one that cancelled it.
    Cancel {
        /// The task to cancel.
        task: TaskId,
    },
    /// Wake up to `n` tasks parked in `queue`, oldest first. Answers
    /// [`Reply::Count`]: how many were woken.
    SchedWake {
        /// The queue.
        queue: QueueId,
        /// The most tasks to wake.
        n: usize,
    },
    /// Read the kernel's clock. Answers [`Reply::Time`].
    Clock,
    /// Which task is running. Answers [`Reply::Task`].
    Current,
    /// Arm a timeout for the calling task at `deadline`. When it expires the
    /// task gets `TimedOut(id)`, taken only by a leaf inside the scope of that
    /// id. Answers [`Reply::Timeout`].
    SetTimeout {
        /// When the timeout expires.
        deadline: Instant,
    },
    /// Disarm a timeout, whether or not it has expired. Answers [`Reply::Unit`].
    UnsetTimeout {
        /// The timeout.
        id: TimeoutId,
    },
    /// Forget `fd`: deregister it and empty its seats. Must come before the fd
    /// is closed, or a reused fd number would inherit a dead registration.
    /// Answers [`Reply::Unit`].
    IoRelease {
        /// The file descriptor about to be closed.
        fd: RawFd,
    },
}

impl Trap {
    /// Whether the trap parks its task (posted) rather than being answered at once (called).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use trapline_traps::Trap;
    ///
    /// assert!(Trap::Sleep { deadline: Instant::now() }.is_blocking(), "posted by a leaf");
    /// assert!(!Trap::Current.is_blocking(), "answered through `call`");
    /// ```
    pub fn is_blocking(&self) -> bool {
        matches!(
            self,
            Trap::Sleep { .. }
                | Trap::ReadWait { .. }
                | Trap::ReadDrained { .. }
                | Trap::WriteWait { .. }
                | Trap::SchedWait { .. }
                | Trap::Join { .. }
                | Trap::FutureWait
                | Trap::Yield
        )
    }

    /// The variant's name, for logs and monitors.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::Trap;
    ///
    /// let trap = Trap::ReadWait { fd: 7 };
    /// assert_eq!(trap.name(), "ReadWait");
    /// assert_eq!(trap.to_string(), "ReadWait(fd 7)", "`Display` adds the argument");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Trap::Sleep { .. } => "Sleep",
            Trap::ReadWait { .. } => "ReadWait",
            Trap::ReadDrained { .. } => "ReadDrained",
            Trap::WriteWait { .. } => "WriteWait",
            Trap::SchedWait { .. } => "SchedWait",
            Trap::Join { .. } => "Join",
            Trap::FutureWait => "FutureWait",
            Trap::Yield => "Yield",
            Trap::Spawn(_) => "Spawn",
            Trap::Cancel { .. } => "Cancel",
            Trap::SchedWake { .. } => "SchedWake",
            Trap::Clock => "Clock",
            Trap::Current => "Current",
            Trap::SetTimeout { .. } => "SetTimeout",
            Trap::UnsetTimeout { .. } => "UnsetTimeout",
            Trap::IoRelease { .. } => "IoRelease",
        }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trap::Sleep { deadline } => write!(f, "Sleep(in {})", Left(*deadline)),
            Trap::ReadWait { fd } => write!(f, "ReadWait(fd {fd})"),
            Trap::ReadDrained { fd } => write!(f, "ReadDrained(fd {fd})"),
            Trap::WriteWait { fd } => write!(f, "WriteWait(fd {fd})"),
            Trap::SchedWait { queue } => write!(f, "SchedWait({queue})"),
            Trap::Join { task } => write!(f, "Join({task})"),
            Trap::FutureWait => f.write_str("FutureWait"),
            Trap::Yield => f.write_str("Yield"),
            Trap::Spawn(_) => f.write_str("Spawn"),
            Trap::Cancel { task } => write!(f, "Cancel({task})"),
            Trap::SchedWake { queue, n } => write!(f, "SchedWake({queue}, {n})"),
            Trap::Clock => f.write_str("Clock"),
            Trap::Current => f.write_str("Current"),
            Trap::SetTimeout { deadline } => write!(f, "SetTimeout(in {})", Left(*deadline)),
            Trap::UnsetTimeout { id } => write!(f, "UnsetTimeout({id})"),
            Trap::IoRelease { fd } => write!(f, "IoRelease(fd {fd})"),
        }
    }
}

/// The time left until a deadline, to two decimals in the unit that reads
/// best (`4.99ms`, `3600.00s`): a person reads a trace, not a nanosecond.
struct Left(Instant);

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = self.0.saturating_duration_since(crate::shown::shown_now());
        let secs = left.as_secs_f64();
        if secs >= 1.0 {
            write!(f, "{secs:.2}s")
        } else if secs >= 1e-3 {
            write!(f, "{:.2}ms", secs * 1e3)
        } else if secs >= 1e-6 {
            write!(f, "{:.2}µs", secs * 1e6)
        } else {
            write!(f, "{}ns", left.as_nanos())
        }
    }
}

impl fmt::Debug for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A kernel's answer to an immediate trap.
///
/// # Examples
///
/// ```
/// use trapline_traps::Reply;
///
/// assert_eq!(Reply::Count(2), Reply::Count(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Done; nothing to say.
    Unit,
    /// A task id (`Spawn`, `Current`).
    Task(TaskId),
    /// A timeout id (`SetTimeout`).
    Timeout(TimeoutId),
    /// A time (`Clock`).
    Time(Instant),
    /// A count (`SchedWake`).
    Count(usize),
    /// Yes or no (`Cancel`).
    Flag(bool),
}

/// What a [`Trap::Spawn`] asks for: the new task's body, its name, and where
/// it was spawned.
///
/// # Examples
///
/// ```
/// use std::panic::Location;
/// use trapline_traps::{SpawnRequest, Trap};
///
/// let request = SpawnRequest {
///     future: Box::pin(async {}),
///     name: Some("echo".into()),
///     location: Location::caller(),
/// };
/// let trap = Trap::Spawn(Box::new(request));
/// assert_eq!(trap.name(), "Spawn");
/// ```
pub struct SpawnRequest {
    /// The new task's body.
    pub future: TaskFuture,
    /// A name for monitors and hooks, if the spawner gave one.
    pub name: Option<Cow<'static, str>>,
    /// The source line of the spawn.
    pub location: &'static Location<'static>,
}

impl fmt::Debug for SpawnRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnRequest")
            .field("name", &self.name)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A blocking request as it waits in the trap slot for the kernel to take it.
///
/// # Examples
///
/// ```
/// use std::task::{Context, Waker};
/// use trapline_traps::{enter, enter_scope, leave, Inbox, Leaf, TaskId, TimeoutId, Trap};
///
/// enter(TaskId::new(0, 1), Inbox::new());
/// let id = TimeoutId::new(0, 1);
/// let _scope = enter_scope(id);
/// let (mut leaf, line) = (Leaf::new(), line!());
/// leaf.trap(&Context::from_waker(Waker::noop()), Trap::WriteWait { fd: 9 })?;
/// let mut posts = Vec::new();
/// let _inbox = leave(&mut posts);
/// let post = &posts[0];
/// assert_eq!(post.trap.name(), "WriteWait");
/// assert_eq!((post.location.line(), post.scope), (line, Some(id)));
/// assert_eq!(Some(post.seq), leaf.ticket().map(|t| t.seq()));
/// # Ok::<(), trapline_traps::TrapError>(())
/// ```
#[derive(Debug)]
pub struct Post {
    /// The leaf's sequence number: its identity for this park.
    pub seq: u64,
    /// The request. Always a blocking one.
    pub trap: Trap,
    /// The waker current when the leaf trapped. If it is not the task's own
    /// (the leaf sits inside a foreign combinator), the kernel wakes it when
    /// the trap fires, so the combinator re-polls the right child.
    pub waker: Waker,
    /// The source line of the await that trapped.
    pub location: &'static Location<'static>,
    /// The innermost timeout scope in force when the leaf trapped: a
    /// timeout's expiry reaches the parks inside its scope.
    pub scope: Option<TimeoutId>,
}

#[cfg(test)]
mod size {
    use super::*;

    /// Every blocking trap moves a `Trap` into the slot and a `Post` into the
    /// kernel: the rare, big spawn request must stay behind its box.
    #[test]
    fn traps_stay_small() {
        assert!(
            std::mem::size_of::<Trap>() <= 24,
            "{}",
            std::mem::size_of::<Trap>()
        );
        assert!(
            std::mem::size_of::<Post>() <= 80,
            "{}",
            std::mem::size_of::<Post>()
        );
    }
}
