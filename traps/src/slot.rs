//! The trap slot: the one place where leaves and the kernel meet.
//!
//! A kernel *installs* itself on its thread as a [`Handler`] for as long as it
//! runs, and around each poll of a task it *enters* the task (lending it the
//! task's [`Inbox`]) and *leaves* it (taking back the inbox and the list of
//! blocking requests the leaves posted). Nothing else crosses the boundary.
//!
//! Discussion: the slot is a list, not a single cell, because one poll may
//! post several requests: `join!(a.read(..), b.read(..))` traps twice before
//! the task returns `Pending`. The kernel parks the task under each of them.

use std::cell::RefCell;
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

use crate::error::TrapError;
use crate::ids::{TaskId, Ticket, TimeoutId};
use crate::inbox::Inbox;
use crate::trap::{Post, Reply, Trap};

/// What a kernel provides to the leaves of its thread.
///
/// Implemented by the trapline kernel, and by anyone writing their own loop
/// (the `by_hand` example of the `trapline` package answers `Clock` and
/// nothing else).
///
/// Implementations must not hold a borrow of their own state while they call
/// into user code, because user code calls back in (a `Spawn` from inside a
/// poll, a `Drop` releasing an fd).
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use std::time::Instant;
/// use trapline_traps::{clock, install, Handler, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct ClockOnly;
/// impl Handler for ClockOnly {
///     fn call(&self, _current: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         match trap {
///             Trap::Clock => Ok(Reply::Time(Instant::now())),
///             other => Err(TrapError::Unsupported(other.name())),
///         }
///     }
///     fn unpost(&self, _ticket: Ticket) {}
/// }
///
/// assert_eq!(clock(), Err(TrapError::NoKernel));
/// let installed = install(Rc::new(ClockOnly)).unwrap();
/// assert!(clock().is_ok());
/// drop(installed);
/// assert_eq!(clock(), Err(TrapError::NoKernel));
/// ```
pub trait Handler {
    /// Answers an immediate trap. `current` is the task being polled, if any.
    fn call(&self, current: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError>;

    /// Undoes the park that `ticket`'s leaf holds, if the kernel has one.
    /// Called when a leaf completes or is dropped.
    fn unpost(&self, ticket: Ticket);
}

struct Slot {
    handler: Option<Rc<dyn Handler>>,
    current: Option<TaskId>,
    inbox: Inbox,
    posts: Vec<Post>,
    scopes: Vec<TimeoutId>,
    next_seq: u64,
}

thread_local! {
    static SLOT: RefCell<Slot> = const {
        RefCell::new(Slot {
            handler: None,
            current: None,
            inbox: Inbox::new(),
            posts: Vec::new(),
            scopes: Vec::new(),
            next_seq: 0,
        })
    };
}

/// Keeps a handler installed on this thread; uninstalls it when dropped.
#[derive(Debug)]
#[must_use = "the handler is uninstalled when this guard is dropped"]
pub struct Installed {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let (handler, posts) = SLOT.with(|s| {
            let mut s = s.borrow_mut();
            s.current = None;
            s.scopes.clear();
            (s.handler.take(), std::mem::take(&mut s.posts))
        });
        // Dropped outside the borrow: dropping a handler or a waker may run
        // user code, which may call back in.
        drop(posts);
        drop(handler);
    }
}

/// Installs `handler` as this thread's kernel.
///
/// Fails with [`TrapError::Unsupported`] if a kernel is already installed: one
/// kernel runs per thread.
pub fn install(handler: Rc<dyn Handler>) -> Result<Installed, TrapError> {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        if s.handler.is_some() {
            return Err(TrapError::Unsupported(
                "a kernel is already running on this thread",
            ));
        }
        s.handler = Some(handler);
        Ok(Installed {
            _not_send: std::marker::PhantomData,
        })
    })
}

/// Whether a kernel is installed on this thread.
pub fn in_kernel() -> bool {
    SLOT.with(|s| s.borrow().handler.is_some())
}

/// Begins a poll of `task`, lending it `inbox`. Called by a kernel only.
pub fn enter(task: TaskId, inbox: Inbox) {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        s.current = Some(task);
        s.inbox = inbox;
        s.scopes.clear();
    });
}

/// Ends the poll begun by [`enter`]: moves the posted requests into `posts`
/// (which should be empty, to be reused) and gives back the task's inbox.
pub fn leave(posts: &mut Vec<Post>) -> Inbox {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        s.current = None;
        s.scopes.clear();
        std::mem::swap(&mut s.posts, posts);
        std::mem::take(&mut s.inbox)
    })
}

/// Runs `f` on the inbox of the task being polled, if one is.
/// A kernel uses this when a task interrupts itself (cancels itself).
pub fn with_current_inbox<R>(f: impl FnOnce(&mut Inbox) -> R) -> Option<R> {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        s.current?;
        Some(f(&mut s.inbox))
    })
}

/// Makes an immediate trap: the kernel answers it before this returns.
///
/// # Examples
///
/// ```
/// use trapline_traps::{call, Trap, TrapError};
///
/// // No kernel runs here.
/// assert_eq!(call(Trap::Clock), Err(TrapError::NoKernel));
/// ```
pub fn call(trap: Trap) -> Result<Reply, TrapError> {
    let (handler, current) = SLOT.with(|s| {
        let s = s.borrow();
        (s.handler.clone(), s.current)
    });
    // The borrow is released: the handler may re-enter the slot.
    handler.ok_or(TrapError::NoKernel)?.call(current, trap)
}

/// Sequence numbers carry their thread in the high bits, so a leaf moved
/// to another thread (and kernel) never collides with the leaves there.
const THREAD_SHIFT: u32 = 40;

impl Slot {
    /// The next sequence number of this thread.
    fn next_seq(&mut self) -> u64 {
        if self.next_seq == 0 {
            static THREADS: AtomicU64 = AtomicU64::new(1);
            self.next_seq = THREADS.fetch_add(1, Ordering::Relaxed) << THREAD_SHIFT;
        }
        self.next_seq += 1;
        self.next_seq
    }

    /// Whether `ticket` was issued to the running task by this thread.
    fn issued_here(&self, ticket: Ticket) -> bool {
        Some(ticket.task) == self.current
            && self.next_seq != 0
            && ticket.seq >> THREAD_SHIFT == self.next_seq >> THREAD_SHIFT
    }
}

/// A leaf's post: called by [`crate::Leaf::trap`]. `waker` was cloned before
/// the slot is borrowed (cloning a foreign waker runs its code).
pub(crate) fn post(
    ticket: Option<Ticket>,
    trap: Trap,
    waker: Waker,
    location: &'static Location<'static>,
) -> Result<Ticket, TrapError> {
    // A leaf that moved to another task keeps a park in its old one: undo it
    // first. (A ticket from another thread matches no park here: harmless.)
    let moved = SLOT.with(|s| {
        let s = s.borrow();
        ticket.filter(|t| s.current.is_some() && !s.issued_here(*t))
    });
    if let Some(old) = moved {
        unpost(old);
    }
    let mut replaced = None;
    let result = SLOT.with(|s| {
        let s = &mut *s.borrow_mut();
        let task = s.current.ok_or(TrapError::NoKernel)?;
        let mine = ticket.filter(|t| s.issued_here(*t));
        if let Some(t) = mine {
            if let Some(err) = s.inbox.take_answer(t.seq) {
                return Err(err);
            }
        }
        if let Some(err) = s.inbox.take_interrupt(&s.scopes) {
            return Err(err);
        }
        let seq = match mine {
            Some(t) => t.seq,
            None => s.next_seq(),
        };
        let new = Post {
            seq,
            trap,
            waker,
            location,
            scope: s.scopes.last().copied(),
        };
        match s.posts.iter_mut().find(|p| p.seq == seq) {
            Some(old) => replaced = Some(std::mem::replace(old, new)),
            None => s.posts.push(new),
        }
        Ok(Ticket { task, seq })
    });
    drop(replaced); // outside the borrow: it holds a waker
    result
}

/// A leaf's unpost: scrub the slot, then let the kernel undo its park.
pub(crate) fn unpost(ticket: Ticket) {
    let (handler, scrubbed) = SLOT.with(|s| {
        let s = &mut *s.borrow_mut();
        let mut scrubbed = None;
        if s.current == Some(ticket.task) {
            if let Some(at) = s.posts.iter().position(|p| p.seq == ticket.seq) {
                scrubbed = Some(s.posts.swap_remove(at));
            }
            s.inbox.scrub(ticket.seq);
        }
        (s.handler.clone(), scrubbed)
    });
    drop(scrubbed); // outside the borrow: it holds a waker
    if let Some(h) = handler {
        h.unpost(ticket);
    }
}

/// Marks timeout `id` as in force for what is polled until the guard drops.
///
/// A timeout wrapper enters its scope around each poll of its inner future;
/// only leaves polled inside the scope can take `TimedOut(id)`.
///
/// # Examples
///
/// ```
/// use trapline_traps::{enter_scope, TimeoutId};
///
/// let scope = enter_scope(TimeoutId::new(0, 1));
/// drop(scope);
/// ```
pub fn enter_scope(id: TimeoutId) -> Scope {
    SLOT.with(|s| s.borrow_mut().scopes.push(id));
    Scope { id }
}

/// A timeout scope in force; see [`enter_scope`].
#[derive(Debug)]
#[must_use = "the scope ends when this guard is dropped"]
pub struct Scope {
    id: TimeoutId,
}

impl Drop for Scope {
    fn drop(&mut self) {
        SLOT.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(at) = s.scopes.iter().rposition(|id| *id == self.id) {
                s.scopes.truncate(at);
            }
        });
    }
}

/// Whether timeout `id` of the running task expired and was taken by a leaf.
pub fn timeout_delivered(id: TimeoutId) -> bool {
    SLOT.with(|s| s.borrow().inbox.was_delivered(id))
}

/// The timeout scopes in force right now (outermost first) whose expiry a
/// leaf of the running task has taken.
pub fn delivered_scopes() -> Vec<TimeoutId> {
    SLOT.with(|s| {
        let s = s.borrow();
        s.inbox.delivered_among(&s.scopes)
    })
}

/// The innermost timeout scope in force right now. A kernel records it as
/// the parent of a timeout being set, to know which parks an expiry reaches.
pub fn innermost_scope() -> Option<TimeoutId> {
    SLOT.with(|s| s.borrow().scopes.last().copied())
}

/// The task being polled on this thread, if any. Answers what `Current`
/// answers, without a trap.
pub fn running() -> Option<TaskId> {
    SLOT.with(|s| s.borrow().current)
}

/// Forgets timeout `id` in the running task's inbox (its scope is over).
pub(crate) fn forget_timeout(id: TimeoutId) {
    SLOT.with(|s| s.borrow_mut().inbox.forget(id));
}
