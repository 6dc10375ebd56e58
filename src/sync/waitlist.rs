//! The waiting room every primitive in `sync` is built on.
//!
//! Principles:
//!
//! - **One wait queue per waiter.** Each waiter parks with a `SchedWait` trap
//!   on a [`QueueId`] of its own, and the primitive keeps the FIFO order in a
//!   list of entries. Waking "the next waiter" is then a `SchedWake` of
//!   exactly that waiter's queue: the order is the primitive's, never an
//!   accident of which leaf happened to re-post first.
//! - **Notified means served.** A primitive notifies a waiter only after it
//!   has given the waiter what it waited for (the lock, a permit, an item,
//!   room for its item). The waiter, polled again, sees it was notified and
//!   completes normally, even if an interrupt arrived at the same moment: a
//!   leaf that can make progress completes. This is the FIFO hand-off.
//! - **Abandoned means given back.** A waiter that goes away (interrupted
//!   before it was served, or dropped after it was served but before it
//!   looked) leaves the list, and what it was given goes to the next one, so
//!   nothing is ever stranded.
//!
//! Discussion: a waiter can be notified before its task has parked: two
//! branches of one `join!` in one task, one waiting, the other releasing, in
//! the same poll. The post is still in the trap slot, so `SchedWake` finds no
//! one in the queue. The entry therefore keeps the waker its leaf trapped
//! with, and a notify that woke no one wakes that waker instead; the task is
//! polled again, the leaf sees it was served and undoes the park it just got.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use trapline_traps::{Leaf, QueueId, TaskId, Trap, TrapError};

/// One waiter: its own wait queue, whether it has been served, and what it
/// carries (an item on its way in or out of a queue).
pub(crate) struct Entry<P> {
    queue: QueueId,
    task: Option<TaskId>,
    notified: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    pub(crate) payload: RefCell<Option<P>>,
}

impl<P> Entry<P> {
    /// The task that waits here.
    pub(crate) fn task(&self) -> Option<TaskId> {
        self.task
    }

    /// Whether the primitive has served this waiter.
    pub(crate) fn notified(&self) -> bool {
        self.notified.get()
    }

    /// Marks the waiter served and wakes it.
    pub(crate) fn notify(&self) {
        self.notified.set(true);
        // Outside a kernel (a primitive dropped after its kernel), or with no
        // park yet (see the module's Discussion): wake the leaf's own waker.
        if trapline_traps::sched_wake(self.queue, 1) != Ok(1) {
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

/// A FIFO list of waiters.
pub(crate) struct WaitList<P> {
    entries: RefCell<VecDeque<Rc<Entry<P>>>>,
}

impl<P> Default for WaitList<P> {
    fn default() -> Self {
        WaitList {
            entries: RefCell::new(VecDeque::new()),
        }
    }
}

impl<P> fmt::Debug for WaitList<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} waiting", self.len())
    }
}

impl<P> WaitList<P> {
    /// Adds a waiter of the running task at the back, carrying `payload`.
    pub(crate) fn push(&self, payload: Option<P>) -> Rc<Entry<P>> {
        let entry = Rc::new(Entry {
            queue: QueueId::new(),
            task: trapline_traps::running(),
            notified: Cell::new(false),
            waker: RefCell::new(None),
            payload: RefCell::new(payload),
        });
        self.entries.borrow_mut().push_back(entry.clone());
        entry
    }

    /// Takes the oldest waiter out of the list (to serve it).
    pub(crate) fn pop_front(&self) -> Option<Rc<Entry<P>>> {
        self.entries.borrow_mut().pop_front()
    }

    /// Takes every waiter out of the list, oldest first.
    pub(crate) fn take_all(&self) -> Vec<Rc<Entry<P>>> {
        self.entries.borrow_mut().drain(..).collect()
    }

    /// Takes `entry` out of the list, if it is still there.
    pub(crate) fn remove(&self, entry: &Rc<Entry<P>>) {
        self.entries.borrow_mut().retain(|e| !Rc::ptr_eq(e, entry));
    }

    /// How many wait.
    pub(crate) fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether no one waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }
}

/// The leaf of every blocking call in `sync`: ready once `entry` is served,
/// otherwise a `SchedWait` on the entry's queue.
pub(crate) struct Waiting<P> {
    entry: Rc<Entry<P>>,
    leaf: Leaf,
}

impl<P> Waiting<P> {
    pub(crate) fn new(entry: Rc<Entry<P>>, location: &'static Location<'static>) -> Waiting<P> {
        Waiting {
            entry,
            leaf: Leaf::at(location),
        }
    }

    /// The entry this leaf waits on.
    pub(crate) fn entry(&self) -> &Rc<Entry<P>> {
        &self.entry
    }

    /// Polls once: `Ready(Ok)` when served, `Ready(Err)` when interrupted.
    pub(crate) fn poll_wait(&mut self, cx: &Context<'_>) -> Poll<Result<(), TrapError>> {
        if self.entry.notified() {
            self.leaf.done();
            return Poll::Ready(Ok(()));
        }
        {
            let mut waker = self.entry.waker.borrow_mut();
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        match self.leaf.trap(
            cx,
            Trap::SchedWait {
                queue: self.entry.queue,
            },
        ) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Waits until served or interrupted.
    pub(crate) async fn wait(&mut self) -> Result<(), TrapError> {
        std::future::poll_fn(|cx| self.poll_wait(cx)).await
    }
}
