//! The end of every chain of awaits: a leaf that traps.
//!
//! A leaf future embeds a [`Leaf`] and follows one rule: *try first, trap
//! second*. It attempts its operation (the syscall, the clock comparison);
//! only if that cannot go on does it call [`Leaf::trap`] and return
//! `Pending`. When it completes, or is dropped half-way, its park goes with
//! it.

use std::panic::Location;
use std::task::Context;

use crate::error::TrapError;
use crate::ids::Ticket;
use crate::slot;
use crate::trap::Trap;

/// The trap-side state of one leaf future: its ticket (sequence number) once
/// it has posted, and the source line of the await that made it.
///
/// # Examples
///
/// A leaf that waits for a flag, written from scratch. It traps with
/// `FutureWait` for brevity; a real leaf would name what it waits for.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use trapline_traps::{Leaf, Trap, TrapError};
///
/// struct UntilTrue<'a> {
///     flag: &'a std::cell::Cell<bool>,
///     leaf: Leaf,
/// }
///
/// impl Future for UntilTrue<'_> {
///     type Output = Result<(), TrapError>;
///     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
///         if self.flag.get() {
///             self.leaf.done(); // completed: release the park, if any
///             return Poll::Ready(Ok(()));
///         }
///         match self.leaf.trap(cx, Trap::FutureWait) {
///             Ok(()) => Poll::Pending,
///             Err(e) => Poll::Ready(Err(e)), // cancelled, timed out, no kernel
///         }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Leaf {
    ticket: Option<Ticket>,
    location: &'static Location<'static>,
}

impl Leaf {
    /// A leaf that has not trapped yet, made at the caller's source line.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::Leaf;
    ///
    /// let (leaf, line) = (Leaf::new(), line!());
    /// assert_eq!(leaf.location().line(), line, "made here");
    /// assert_eq!(leaf.ticket(), None, "it has not trapped");
    /// ```
    #[track_caller]
    pub fn new() -> Leaf {
        Leaf::at(Location::caller())
    }

    /// A leaf that reports `location` as the line of its await.
    ///
    /// # Examples
    ///
    /// A leaf made inside a library function reports the line of the user's await:
    ///
    /// ```
    /// use std::panic::Location;
    /// use trapline_traps::Leaf;
    ///
    /// #[track_caller]
    /// fn my_read() -> Leaf {
    ///     Leaf::at(Location::caller())
    /// }
    ///
    /// let (leaf, line) = (my_read(), line!());
    /// assert_eq!(leaf.location().line(), line);
    /// ```
    pub fn at(location: &'static Location<'static>) -> Leaf {
        Leaf {
            ticket: None,
            location,
        }
    }

    /// The source line this leaf reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::Leaf;
    ///
    /// let (leaf, line) = (Leaf::new(), line!());
    /// assert_eq!(leaf.location().file(), file!());
    /// assert_eq!(leaf.location().line(), line);
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// The leaf's ticket, once it has trapped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use std::task::{Context, Waker};
    /// use trapline_traps::{enter, install, leave, Handler, Inbox, Leaf, Reply, TaskId, Ticket, Trap, TrapError};
    ///
    /// struct NoCalls;
    /// impl Handler for NoCalls {
    ///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
    ///         Err(TrapError::Unsupported(trap.name()))
    ///     }
    ///     fn unpost(&self, _: Ticket) {}
    /// }
    ///
    /// let _kernel = install(Rc::new(NoCalls))?;
    /// let task = TaskId::new(0, 1);
    /// enter(task, Inbox::new());
    /// let mut leaf = Leaf::new();
    /// assert_eq!(leaf.ticket(), None);
    /// leaf.trap(&Context::from_waker(Waker::noop()), Trap::Yield)?;
    /// assert_eq!(leaf.ticket().map(|t| t.slot()), Some(task.index()));
    /// let _inbox = leave(&mut Vec::new());
    /// # Ok::<(), TrapError>(())
    /// ```
    pub fn ticket(&self) -> Option<Ticket> {
        self.ticket
    }

    /// Posts the blocking request `trap`, or learns why it must not wait.
    ///
    /// On `Ok(())` the leaf returns `Pending`: the kernel will park the task
    /// under `trap` after the poll. On `Err` the leaf completes with that
    /// error: a `Cancelled` or `TimedOut` interrupt for its task, a
    /// `ResourceBusy` answer to its previous post, `NoKernel` outside a
    /// running kernel, or `Unsupported` for an immediate trap or for a leaf
    /// polled while its kernel runs no task.
    ///
    /// # Examples
    ///
    /// What a kernel's poll of a task sees when a leaf traps, and the two ways a
    /// post fails without one:
    ///
    /// ```
    /// use std::rc::Rc;
    /// use std::task::{Context, Waker};
    /// use trapline_traps::{enter, install, leave, Handler, Inbox, Leaf, Reply, TaskId, Ticket, Trap, TrapError};
    ///
    /// struct NoCalls;
    /// impl Handler for NoCalls {
    ///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
    ///         Err(TrapError::Unsupported(trap.name()))
    ///     }
    ///     fn unpost(&self, _: Ticket) {}
    /// }
    ///
    /// let cx = Context::from_waker(Waker::noop());
    /// let mut leaf = Leaf::new();
    /// assert!(matches!(leaf.trap(&cx, Trap::Clock), Err(TrapError::Unsupported(_))), "called, not posted");
    /// assert_eq!(leaf.trap(&cx, Trap::Yield), Err(TrapError::NoKernel));
    ///
    /// let _kernel = install(Rc::new(NoCalls))?;
    /// enter(TaskId::new(0, 1), Inbox::new());
    /// leaf.trap(&cx, Trap::ReadWait { fd: 7 })?; // the leaf would now return `Pending`
    /// let mut posts = Vec::new();
    /// let _inbox = leave(&mut posts);
    /// assert_eq!(posts[0].trap.to_string(), "ReadWait(fd 7)");
    /// # Ok::<(), TrapError>(())
    /// ```
    pub fn trap(&mut self, cx: &Context<'_>, trap: Trap) -> Result<(), TrapError> {
        if !trap.is_blocking() {
            return Err(TrapError::Unsupported("an immediate trap cannot be posted"));
        }
        let result = slot::post(self.ticket, trap, cx.waker().clone(), self.location);
        match result {
            Ok(ticket) => {
                self.ticket = Some(ticket);
                Ok(())
            }
            Err(err) => {
                self.done();
                Err(err)
            }
        }
    }

    /// The leaf has completed: its park, if it still has one, is undone.
    /// Called automatically on drop; calling it twice is harmless.
    ///
    /// # Examples
    ///
    /// A leaf that posted, then found it could go on after all:
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// use trapline_traps::{enter, leave, Inbox, Leaf, TaskId, Trap};
    ///
    /// enter(TaskId::new(0, 1), Inbox::new());
    /// let mut leaf = Leaf::new();
    /// leaf.trap(&Context::from_waker(Waker::noop()), Trap::Yield)?;
    /// leaf.done();
    /// leaf.done(); // harmless
    /// assert_eq!(leaf.ticket(), None);
    /// let mut posts = Vec::new();
    /// let _inbox = leave(&mut posts);
    /// assert!(posts.is_empty(), "its post went with it");
    /// # Ok::<(), trapline_traps::TrapError>(())
    /// ```
    #[inline]
    pub fn done(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            slot::unpost(ticket);
        }
    }

    /// The leaf trapped [`Trap::Yield`] and is polled again: it completes.
    /// The kernel keeps nothing of a yield (the task went straight back to
    /// the ready queue, or its foreign waker was woken at once), so there is
    /// no park to undo and no answer owed to the leaf; only a post still
    /// waiting in the trap slot (the yield was completed in the same poll
    /// that trapped it) must be taken back, and that costs one look.
    ///
    /// Use it only for a leaf whose one trap was `Yield`; any other leaf
    /// completes with [`Leaf::done`].
    ///
    /// Discussion: a yield is the one trap a task makes over and over with
    /// nothing to wait for, so its completion should cost next to nothing.
    /// It must still take back a post made in the same poll: left there, it
    /// would send the task back to the ready queue after a poll that asked
    /// to wait, and a future that yields and completes the yield in every
    /// poll (a combinator polling a child twice) would never sleep
    /// (`tests/yield_paths.rs`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// use trapline_traps::{enter, leave, Inbox, Leaf, TaskId, Trap};
    ///
    /// let task = TaskId::new(0, 1);
    /// let cx = Context::from_waker(Waker::noop());
    /// enter(task, Inbox::new());
    /// let mut leaf = Leaf::new();
    /// leaf.trap(&cx, Trap::Yield)?;
    /// let mut posts = Vec::new();
    /// let inbox = leave(&mut posts); // the kernel takes the yield
    /// assert_eq!(posts.len(), 1);
    ///
    /// enter(task, inbox); // the next poll
    /// leaf.done_after_yield();
    /// assert_eq!(leaf.ticket(), None, "nothing left to undo");
    ///
    /// // Trapped and completed in one poll: the post is taken back.
    /// let mut again = Leaf::new();
    /// again.trap(&cx, Trap::Yield)?;
    /// again.done_after_yield();
    /// let _inbox = leave(&mut posts);
    /// assert!(posts.is_empty(), "no yield left for the kernel");
    /// # Ok::<(), trapline_traps::TrapError>(())
    /// ```
    pub fn done_after_yield(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            slot::unpost_yield(ticket);
        }
    }
}

impl Default for Leaf {
    #[track_caller]
    fn default() -> Leaf {
        Leaf::new()
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pending leaf future carries a `Leaf`, and a task asleep carries
    /// one for good: a ticket and a source line, with no tag for "not yet
    /// trapped" (a ticket's sequence number is never 0).
    #[test]
    fn a_leaf_is_three_words() {
        assert_eq!(std::mem::size_of::<Leaf>(), 24);
        assert_eq!(std::mem::size_of::<Option<Ticket>>(), 16);
    }
}
