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
    ///
    /// # Examples
    ///
    /// A handler learns which task is asking from `current`, which the slot
    /// fills in from [`enter`]:
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use trapline_traps::{call, enter, install, leave, Handler, Inbox, Reply, TaskId, Ticket, Trap, TrapError};
    ///
    /// struct Witness(Cell<Option<TaskId>>); // who called last
    /// impl Handler for Witness {
    ///     fn call(&self, current: Option<TaskId>, _: Trap) -> Result<Reply, TrapError> {
    ///         self.0.set(current);
    ///         Ok(Reply::Unit)
    ///     }
    ///     fn unpost(&self, _: Ticket) {}
    /// }
    ///
    /// let kernel = Rc::new(Witness(Cell::new(None)));
    /// let _installed = install(kernel.clone())?;
    /// let task = TaskId::new(0, 1);
    /// enter(task, Inbox::new());
    /// assert_eq!(call(Trap::IoRelease { fd: 7 })?, Reply::Unit);
    /// assert_eq!(kernel.0.get(), Some(task));
    /// let _inbox = leave(&mut Vec::new());
    /// # Ok::<(), TrapError>(())
    /// ```
    fn call(&self, current: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError>;

    /// Undoes the park that `ticket`'s leaf holds, if the kernel has one.
    /// Called when a leaf completes or is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::task::{Context, Waker};
    /// use trapline_traps::{enter, install, leave, Handler, Inbox, Leaf, Reply, TaskId, Ticket, Trap, TrapError};
    ///
    /// struct Undo(Cell<u32>); // how many parks it was asked to undo
    /// impl Handler for Undo {
    ///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
    ///         Err(TrapError::Unsupported(trap.name()))
    ///     }
    ///     fn unpost(&self, _: Ticket) {
    ///         self.0.set(self.0.get() + 1);
    ///     }
    /// }
    ///
    /// let kernel = Rc::new(Undo(Cell::new(0)));
    /// let _installed = install(kernel.clone())?;
    /// enter(TaskId::new(0, 1), Inbox::new());
    /// let mut leaf = Leaf::new();
    /// leaf.trap(&Context::from_waker(Waker::noop()), Trap::Yield)?;
    /// drop(leaf); // as `select!` drops the branch that lost
    /// assert_eq!(kernel.0.get(), 1);
    /// let _inbox = leave(&mut Vec::new());
    /// # Ok::<(), TrapError>(())
    /// ```
    fn unpost(&self, ticket: Ticket);
}

/// What the thread's trap slot holds.
pub(crate) struct Slot {
    handler: Option<Rc<dyn Handler>>,
    current: Option<TaskId>,
    /// The task being polled holds no park in the kernel (see
    /// [`enter_unparked`]): its leaves' unposts need not reach the kernel.
    unparked: bool,
    pub(crate) inbox: Inbox,
    posts: Vec<Post>,
    /// Timeout scopes in force, outermost first.
    pub(crate) scopes: Vec<TimeoutId>,
    /// Shields in force: for each, how many scopes were in force when it was
    /// entered (the scopes it holds back).
    pub(crate) shields: Vec<usize>,
    /// The expiries leaves took during this poll, in order.
    pub(crate) taken: Vec<TimeoutId>,
    /// How many leaves trapped inside a shield during this poll.
    pub(crate) shielded_waits: usize,
    /// How many interrupts leaves took during this poll.
    delivered_this_poll: usize,
    next_seq: u64,
}

thread_local! {
    pub(crate) static SLOT: RefCell<Slot> = const {
        RefCell::new(Slot {
            handler: None,
            current: None,
            unparked: false,
            inbox: Inbox::new(),
            posts: Vec::new(),
            scopes: Vec::new(),
            shields: Vec::new(),
            taken: Vec::new(),
            shielded_waits: 0,
            delivered_this_poll: 0,
            next_seq: 0,
        })
    };
}

/// Keeps a handler installed on this thread; uninstalls it when dropped.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use trapline_traps::{in_kernel, install, Handler, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct NoCalls;
/// impl Handler for NoCalls {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         Err(TrapError::Unsupported(trap.name()))
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let installed = install(Rc::new(NoCalls))?;
/// assert!(in_kernel());
/// drop(installed);
/// assert!(!in_kernel());
/// # Ok::<(), TrapError>(())
/// ```
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
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use trapline_traps::{install, Handler, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct NoCalls;
/// impl Handler for NoCalls {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         Err(TrapError::Unsupported(trap.name()))
///     }
///     fn unpost(&self, _: Ticket) {}
/// }
///
/// let first = install(Rc::new(NoCalls))?;
/// assert!(matches!(install(Rc::new(NoCalls)), Err(TrapError::Unsupported(_))));
/// drop(first);
/// assert!(install(Rc::new(NoCalls)).is_ok(), "the thread is free again");
/// # Ok::<(), TrapError>(())
/// ```
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
///
/// # Examples
///
/// A socket checks this before it makes an fd no kernel would watch:
///
/// ```
/// use std::io;
/// use trapline_traps::{in_kernel, TrapError};
///
/// fn require_kernel() -> io::Result<()> {
///     if in_kernel() { Ok(()) } else { Err(TrapError::NoKernel.into()) }
/// }
///
/// let err = require_kernel().unwrap_err();
/// assert_eq!(TrapError::from_io(&err), Some(&TrapError::NoKernel));
/// ```
pub fn in_kernel() -> bool {
    SLOT.with(|s| s.borrow().handler.is_some())
}

/// Begins a poll of `task`, lending it `inbox`. Called by a kernel only.
///
/// # Examples
///
/// The inbox is the task's for the length of the poll, then comes back:
///
/// ```
/// use trapline_traps::{enter, leave, running, Delivery, Inbox, TaskId};
///
/// let task = TaskId::new(0, 1);
/// let mut inbox = Inbox::new();
/// inbox.cancel(); // the kernel recorded a cancel for the task
/// enter(task, inbox);
/// assert_eq!(running(), Some(task));
/// let inbox = leave(&mut Vec::new());
/// assert_eq!(running(), None);
/// assert_eq!(inbox.cancel_state(), Delivery::Pending, "no leaf trapped to take it");
/// ```
pub fn enter(task: TaskId, inbox: Inbox) {
    lend(task, inbox, false);
}

/// Like [`enter`], for a task that holds no park in the kernel. A leaf of it
/// that completes or is dropped during this poll then has nothing for the
/// kernel to undo, and the slot does not call [`Handler::unpost`] for it:
/// the common case of a resumed leaf completing costs no call.
///
/// Discussion: this is sound because a task's parks are made only after its
/// poll, from what [`leave`] hands over; during the poll they can only go.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::task::{Context, Waker};
/// use trapline_traps::{enter_unparked, install, leave, Handler, Inbox, Leaf, Reply, TaskId, Ticket, Trap, TrapError};
///
/// struct Undo(Cell<u32>); // how many parks it was asked to undo
/// impl Handler for Undo {
///     fn call(&self, _: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
///         Err(TrapError::Unsupported(trap.name()))
///     }
///     fn unpost(&self, _: Ticket) {
///         self.0.set(self.0.get() + 1);
///     }
/// }
///
/// let kernel = Rc::new(Undo(Cell::new(0)));
/// let _installed = install(kernel.clone())?;
/// enter_unparked(TaskId::new(0, 1), Inbox::new());
/// let mut leaf = Leaf::new();
/// leaf.trap(&Context::from_waker(Waker::noop()), Trap::Yield)?;
/// drop(leaf); // its post is scrubbed from the slot; the kernel has no park of it
/// assert_eq!(kernel.0.get(), 0);
/// assert!(leave(&mut Vec::new()).is_empty());
/// # Ok::<(), TrapError>(())
/// ```
pub fn enter_unparked(task: TaskId, inbox: Inbox) {
    lend(task, inbox, true);
}

fn lend(task: TaskId, inbox: Inbox, unparked: bool) {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        s.current = Some(task);
        s.unparked = unparked;
        s.inbox = inbox;
        s.scopes.clear();
        s.shields.clear();
        s.taken.clear();
        s.shielded_waits = 0;
        s.delivered_this_poll = 0;
    });
}

/// Ends the poll begun by [`enter`]: moves the posted requests into `posts`
/// (which should be empty, to be reused) and gives back the task's inbox.
///
/// # Examples
///
/// One poll, two leaves waiting, as in `join!(a.read(..), b.read(..))`:
///
/// ```
/// use std::task::{Context, Waker};
/// use trapline_traps::{enter, leave, Inbox, Leaf, TaskId, Trap};
///
/// enter(TaskId::new(0, 1), Inbox::new());
/// let cx = Context::from_waker(Waker::noop());
/// let (mut a, mut b) = (Leaf::new(), Leaf::new());
/// a.trap(&cx, Trap::ReadWait { fd: 7 })?;
/// b.trap(&cx, Trap::ReadWait { fd: 8 })?;
/// let mut posts = Vec::new();
/// let _inbox = leave(&mut posts);
/// let traps: Vec<String> = posts.iter().map(|p| p.trap.to_string()).collect();
/// assert_eq!(traps, ["ReadWait(fd 7)", "ReadWait(fd 8)"]);
/// # Ok::<(), trapline_traps::TrapError>(())
/// ```
pub fn leave(posts: &mut Vec<Post>) -> Inbox {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        s.current = None;
        s.unparked = false;
        s.scopes.clear();
        std::mem::swap(&mut s.posts, posts);
        std::mem::take(&mut s.inbox)
    })
}

/// Runs `f` on the inbox of the task being polled, if one is.
/// A kernel uses this when a task interrupts itself (cancels itself).
///
/// # Examples
///
/// ```
/// use trapline_traps::{enter, leave, with_current_inbox, Delivery, Inbox, TaskId};
///
/// assert_eq!(with_current_inbox(|i| i.cancel()), None, "no task is polled");
/// enter(TaskId::new(0, 1), Inbox::new());
/// // The running task cancels itself: its inbox is on loan to the slot.
/// assert_eq!(with_current_inbox(|i| i.cancel()), Some(true));
/// let inbox = leave(&mut Vec::new());
/// assert_eq!(inbox.cancel_state(), Delivery::Pending);
/// ```
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

/// The most interrupts delivered to leaves in one poll of a task; see
/// `Slot::take_interrupt`.
pub const INTERRUPTS_PER_POLL: usize = 1024;

/// Sequence numbers carry their thread's block in the high bits, so a leaf
/// moved to another thread (and kernel) never collides with the leaves
/// there (see `Slot::next_seq`).
const THREAD_SHIFT: u32 = 40;

impl Slot {
    /// The next sequence number of this thread.
    ///
    /// Discussion: the numbers must be unique in the process, since the
    /// kernel tells a leaf's park from another by its number alone (with the
    /// task's slot). A thread draws a block of 2^40 numbers, its high bits;
    /// one that uses its block up (a day of ten million new leaves a second)
    /// draws a fresh block rather than run into the next thread's. Its older
    /// leaves then fail `issued_here` and post afresh, as moved leaves do.
    fn next_seq(&mut self) -> u64 {
        const BLOCK: u64 = (1 << THREAD_SHIFT) - 1;
        if self.next_seq & BLOCK == BLOCK || self.next_seq == 0 {
            static BLOCKS: AtomicU64 = AtomicU64::new(1);
            let block = BLOCKS.fetch_add(1, Ordering::Relaxed);
            debug_assert!(block < 1 << (64 - THREAD_SHIFT), "sequence blocks used up");
            self.next_seq = block << THREAD_SHIFT;
        }
        self.next_seq += 1;
        self.next_seq
    }

    /// The interrupt in force for a leaf about to wait here, if any. Inside a
    /// shield, cancellation and the timeouts set outside it are held back.
    ///
    /// Discussion: interrupts are level-triggered, so a loop that catches
    /// the error and waits again, unshielded, would meet it again and again
    /// without ever returning `Pending`, and the kernel could neither run
    /// anything else nor drop the task at shutdown. After
    /// [`INTERRUPTS_PER_POLL`] deliveries in one poll, leaves park normally
    /// and the inbox asks the kernel to poll the task again
    /// ([`Inbox::take_throttled`]): the interrupt goes on being delivered,
    /// one poll at a time.
    #[inline]
    fn take_interrupt(&mut self) -> Option<TrapError> {
        let err = match self.shields.last() {
            None => self.inbox.take_interrupt(&self.scopes),
            Some(&depth) => {
                let inside = self.scopes.get(depth..).unwrap_or(&[]);
                self.inbox.take_expiry(inside)
            }
        }?;
        if self.delivered_this_poll >= INTERRUPTS_PER_POLL {
            self.inbox.throttle(err);
            return None;
        }
        self.delivered_this_poll += 1;
        Some(err)
    }

    /// Logs a timeout expiry handed to a leaf, for the timeout blocks
    /// around it to see (see `scope::enclosing_taken_since`).
    fn note_taken(&mut self, err: &TrapError) {
        if let TrapError::TimedOut(id) = *err {
            self.taken.push(id);
        }
    }

    /// Whether `ticket` was issued by this thread to a task in the running
    /// task's slot. (If not the running task itself, then a task that held
    /// the slot before it and has ended: its parks went with it, and the
    /// leaf may go on under its sequence number, unique as ever.)
    fn issued_here(&self, ticket: Ticket) -> bool {
        self.current.map(TaskId::index) == Some(ticket.slot())
            && self.next_seq != 0
            && ticket.seq() >> THREAD_SHIFT == self.next_seq >> THREAD_SHIFT
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
    /// How a post went, decided under one borrow of the slot.
    enum Posted {
        Done(Result<Ticket, TrapError>),
        /// The leaf moved to another task and keeps a park in its old one:
        /// undo that first, outside the borrow, then post afresh. (A ticket
        /// from another thread matches no park here: harmless.)
        Moved(Ticket, Trap, Waker),
    }
    let mut replaced = None;
    let posted = SLOT.with(|s| {
        let s = &mut *s.borrow_mut();
        let task = match (s.current, &s.handler) {
            (Some(task), _) => task,
            (None, Some(_)) => {
                return Posted::Done(Err(TrapError::Unsupported(
                    "a leaf was polled outside a task",
                )))
            }
            (None, None) => return Posted::Done(Err(TrapError::NoKernel)),
        };
        let mine = match ticket {
            Some(t) if !s.issued_here(t) => return Posted::Moved(t, trap, waker),
            mine => mine,
        };
        if let Some(t) = mine {
            if let Some(err) = s.inbox.take_answer(t.seq()) {
                return Posted::Done(Err(err));
            }
        }
        if let Some(err) = s.take_interrupt() {
            s.note_taken(&err);
            return Posted::Done(Err(err));
        }
        let seq = match mine {
            Some(t) => t.seq(),
            None => s.next_seq(),
        };
        if !s.shields.is_empty() {
            s.shielded_waits += 1;
        }
        let new = Post {
            seq,
            trap,
            waker,
            location,
            scope: s.scopes.last().copied(),
        };
        // Only a leaf that posted before can have a post here to replace
        // (it posted twice in one poll); a new sequence number has none.
        let earlier = match mine {
            Some(_) => s.posts.iter_mut().find(|p| p.seq == seq),
            None => None,
        };
        match earlier {
            Some(old) => replaced = Some(std::mem::replace(old, new).waker),
            None => s.posts.push(new),
        }
        Posted::Done(Ok(Ticket::new(task.index(), seq)))
    });
    drop(replaced); // outside the borrow: it holds a waker
    match posted {
        Posted::Done(result) => result,
        Posted::Moved(old, trap, waker) => {
            unpost(old);
            post(None, trap, waker, location)
        }
    }
}

/// A leaf's unpost: scrub the slot, then let the kernel undo its park (if
/// the task may hold one, see [`enter_unparked`]).
pub(crate) fn unpost(ticket: Ticket) {
    let (handler, scrubbed) = SLOT.with(|s| {
        let s = &mut *s.borrow_mut();
        let mut scrubbed = None;
        if s.current.map(TaskId::index) == Some(ticket.slot()) {
            if let Some(at) = s.posts.iter().position(|p| p.seq == ticket.seq()) {
                // A blocking trap holds nothing to drop but the waker.
                scrubbed = Some(s.posts.swap_remove(at).waker);
            }
            s.inbox.scrub(ticket.seq());
            if s.unparked {
                return (None, scrubbed);
            }
        }
        (s.handler.clone(), scrubbed)
    });
    drop(scrubbed); // outside the borrow: a waker's drop is foreign code
    if let Some(h) = handler {
        h.unpost(ticket);
    }
}

/// Takes back a completed yield's post if it is still in the slot (made in
/// this same poll); otherwise there is nothing to undo: see
/// [`Leaf::done_after_yield`](crate::Leaf::done_after_yield).
pub(crate) fn unpost_yield(ticket: Ticket) {
    let posted = SLOT.with(|s| !s.borrow().posts.is_empty());
    if posted {
        unpost(ticket);
    }
}

/// The task being polled on this thread, if any. Answers what `Current`
/// answers, without a trap.
///
/// # Examples
///
/// ```
/// use trapline_traps::{enter, in_kernel, leave, running, Inbox, TaskId};
///
/// assert_eq!(running(), None);
/// let task = TaskId::new(0, 1);
/// enter(task, Inbox::new());
/// assert_eq!(running(), Some(task));
/// assert!(!in_kernel(), "no trap, so no kernel needed to answer");
/// let _inbox = leave(&mut Vec::new());
/// ```
pub fn running() -> Option<TaskId> {
    SLOT.with(|s| s.borrow().current)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that uses up its block of sequence numbers draws a fresh
    /// block: it never runs into the numbers of the thread after it, and
    /// a leaf numbered from the old block no longer counts as issued here.
    #[test]
    fn a_used_up_block_of_numbers_is_replaced_not_overrun() {
        SLOT.with(|s| {
            let s = &mut *s.borrow_mut();
            s.current = Some(TaskId::new(0, 1));
            let first = s.next_seq();
            let block = first >> THREAD_SHIFT;
            let old = Ticket::new(0, first);
            assert!(s.issued_here(old));
            s.next_seq = (block << THREAD_SHIFT) | ((1 << THREAD_SHIFT) - 2);
            let last = s.next_seq();
            assert_eq!(last >> THREAD_SHIFT, block, "the block's last number");
            let fresh = s.next_seq();
            assert_ne!(fresh >> THREAD_SHIFT, block, "a block of its own");
            assert_eq!(fresh & ((1 << THREAD_SHIFT) - 1), 1, "no carry into it");
            assert!(!s.issued_here(old), "an old leaf posts afresh");
            s.current = None;
        });
    }
}
