//! `UniversalQueue<T>`: one queue for kernel tasks and OS threads alike.
//!
//! The items live behind a `Mutex`. OS threads block on a `Condvar`; kernel
//! tasks never block a thread: a task that must wait records its `Waker` in
//! the queue and traps with `FutureWait`, the trap for "something outside the
//! vocabulary will wake me". A `put` or `get` from anywhere — a task of this
//! kernel, a task of another kernel, a plain thread — takes the oldest such
//! waker and wakes it. `Waker` is `Send`: a wake from another thread goes
//! through the kernel's remote queue and rings its `mio::Waker`, so the
//! waiting task resumes at once. Because the wait is a trap, it is
//! cancellable and timeout-able like any other.
//!
//! Discussion: a waker taken by a `put` is a promise that one task will look
//! again. A task interrupted (or dropped) after its waker was taken, that
//! never took the item, passes the wake on to the next waiting task, so an
//! item is never left behind in a queue while a task waits for it. Items are
//! only ever taken by the getter that returns them: an interrupted `get`
//! loses nothing, and an interrupted `put` has added nothing.
//!
//! Fairness: none is promised, unlike `sync::Queue`, whose waiters are
//! served by hand-off. Here a wake is only a call to look again: a woken
//! getter (or putter) takes the item (or room) when it is polled, if it is
//! still there. Meanwhile any caller that arrives first — a `try_get`, a
//! thread's `get_blocking`, another task's `get` polled earlier in the pass
//! — may take it; the woken task then finds nothing, its place in line was
//! given up when its waker was taken, and it waits again at the *back*. So
//! wakes go out oldest first, but a waiter can be overtaken any number of
//! times; under steady contention one task may wait indefinitely. Use
//! `sync::Queue` between tasks of one kernel when order matters.

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use trapline_traps::{Leaf, TrapError};

pub use waits::{Get, Put};

mod waits;

/// Tasks waiting on one side of the queue, oldest first, by ticket.
#[derive(Default)]
pub(super) struct Sleepers {
    next: u64,
    list: VecDeque<(u64, Waker)>,
}

impl Sleepers {
    /// Records (or refreshes) the waker of ticket `mine`; returns the ticket.
    pub(super) fn wait(&mut self, mine: Option<u64>, waker: &Waker) -> u64 {
        if let Some(t) = mine {
            if let Some(entry) = self.list.iter_mut().find(|(id, _)| *id == t) {
                entry.1.clone_from(waker);
                return t;
            }
        }
        self.next += 1;
        self.list.push_back((self.next, waker.clone()));
        self.next
    }

    /// Leaves the line. Returns `false` if the ticket's waker had been taken
    /// (someone woke it).
    pub(super) fn leave(&mut self, ticket: u64) -> bool {
        let before = self.list.len();
        self.list.retain(|(id, _)| *id != ticket);
        self.list.len() != before
    }

    pub(super) fn take_one(&mut self) -> Option<Waker> {
        self.list.pop_front().map(|(_, w)| w)
    }
}

pub(super) struct State<T> {
    pub(super) items: VecDeque<T>,
    capacity: Option<usize>,
    pub(super) getters: Sleepers,
    pub(super) putters: Sleepers,
}

impl<T> State<T> {
    pub(super) fn full(&self) -> bool {
        self.capacity.is_some_and(|c| self.items.len() >= c)
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Threads blocked in `get_blocking` or `put_blocking`.
    changed: Condvar,
}

/// A FIFO queue shared by kernel tasks and OS threads.
///
/// Clones are handles to the same queue; it is `Send` and `Sync` when `T`
/// is `Send`.
///
/// # Examples
///
/// A thread produces, a task consumes:
///
/// ```
/// use trapline::UniversalQueue;
///
/// let queue = UniversalQueue::bounded(4);
/// let producer = {
///     let queue = queue.clone();
///     std::thread::spawn(move || {
///         for i in 0..10 {
///             queue.put_blocking(i).unwrap();
///         }
///     })
/// };
/// let sum = trapline::run(async {
///     let mut sum = 0;
///     for _ in 0..10 {
///         sum += queue.get().await?;
///     }
///     Ok::<_, trapline::TrapError>(sum)
/// })??;
/// producer.join().unwrap();
/// assert_eq!(sum, 45);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UniversalQueue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for UniversalQueue<T> {
    fn clone(&self) -> Self {
        UniversalQueue {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for UniversalQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("UniversalQueue")
            .field("len", &s.items.len())
            .field("capacity", &s.capacity)
            .field(
                "waiting_tasks",
                &(s.getters.list.len() + s.putters.list.len()),
            )
            .finish()
    }
}

impl<T> UniversalQueue<T> {
    fn with_capacity(capacity: Option<usize>) -> UniversalQueue<T> {
        UniversalQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    items: VecDeque::new(),
                    capacity,
                    getters: Sleepers::default(),
                    putters: Sleepers::default(),
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// A queue without a limit.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::UniversalQueue::<u8>::unbounded();
    /// assert!(queue.is_empty());
    /// ```
    pub fn unbounded() -> UniversalQueue<T> {
        UniversalQueue::with_capacity(None)
    }

    /// A queue of at most `capacity` items (0 is taken as 1).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::UniversalQueue::bounded(1);
    /// queue.try_put(1).unwrap();
    /// assert_eq!(queue.try_put(2), Err(2));
    /// ```
    pub fn bounded(capacity: usize) -> UniversalQueue<T> {
        UniversalQueue::with_capacity(Some(capacity.max(1)))
    }

    /// An item left: wake the oldest task waiting to put, and the blocked
    /// threads (after the lock is released).
    pub(super) fn made_room(&self, mut s: MutexGuard<'_, State<T>>) {
        let wake = s.putters.take_one();
        drop(s);
        self.shared.changed.notify_all();
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// An item came: wake the oldest task waiting to get, and the blocked
    /// threads (after the lock is released).
    pub(super) fn made_item(&self, mut s: MutexGuard<'_, State<T>>) {
        let wake = s.getters.take_one();
        drop(s);
        self.shared.changed.notify_all();
        if let Some(w) = wake {
            w.wake();
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic elsewhere while the lock was held cannot leave the queue
        // half-changed: every change is one push or one pop.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many items it holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::UniversalQueue::unbounded();
    /// queue.try_put('x').unwrap();
    /// assert_eq!(queue.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether it holds no item.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(trapline::UniversalQueue::<u8>::unbounded().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many kernel tasks wait in `get`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::UniversalQueue::<u8>::unbounded().waiting_getters(), 0);
    /// ```
    pub fn waiting_getters(&self) -> usize {
        self.lock().getters.list.len()
    }

    /// Takes the oldest item without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::UniversalQueue::unbounded();
    /// assert_eq!(queue.try_get(), None);
    /// queue.try_put(3).unwrap();
    /// assert_eq!(queue.try_get(), Some(3));
    /// ```
    pub fn try_get(&self) -> Option<T> {
        let mut s = self.lock();
        let item = s.items.pop_front()?;
        self.made_room(s);
        Some(item)
    }

    /// Adds `item` without waiting; gives it back if the queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::UniversalQueue::bounded(1);
    /// assert_eq!(queue.try_put("a"), Ok(()));
    /// assert_eq!(queue.try_put("b"), Err("b"));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), T> {
        let mut s = self.lock();
        if s.full() {
            return Err(item);
        }
        s.items.push_back(item);
        self.made_item(s);
        Ok(())
    }

    /// Takes the oldest item, blocking this OS thread until there is one.
    ///
    /// For plain threads: on a thread that runs a trapline kernel it would
    /// stall every task, so there it fails at once with `Unsupported`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::UniversalQueue::unbounded();
    /// let q = queue.clone();
    /// std::thread::spawn(move || q.try_put(9).unwrap());
    /// assert_eq!(queue.get_blocking(), Ok(9));
    /// ```
    pub fn get_blocking(&self) -> Result<T, TrapError> {
        refuse_on_kernel_thread("UniversalQueue::get_blocking")?;
        let mut s = self.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                self.made_room(s);
                return Ok(item);
            }
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Adds `item`, blocking this OS thread while the queue is full. Refused
    /// on a kernel thread, like [`UniversalQueue::get_blocking`].
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::UniversalQueue::bounded(1);
    /// queue.put_blocking(1).unwrap();
    /// assert_eq!(queue.try_get(), Some(1));
    /// ```
    pub fn put_blocking(&self, item: T) -> Result<(), TrapError> {
        refuse_on_kernel_thread("UniversalQueue::put_blocking")?;
        let mut s = self.lock();
        while s.full() {
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
        s.items.push_back(item);
        self.made_item(s);
        Ok(())
    }

    /// Takes the oldest item, waiting (as a task) until there is one.
    ///
    /// A `FutureWait` trap while it waits: cancellable and timeout-able; an
    /// interrupted `get` takes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{timeout_after, TrapError, UniversalQueue};
    ///
    /// trapline::run(async {
    ///     let queue = UniversalQueue::<u8>::unbounded();
    ///     let waited = timeout_after(Duration::from_millis(5), queue.get()).await;
    ///     assert!(matches!(waited, Err(TrapError::TimedOut(_))));
    ///     assert_eq!(queue.waiting_getters(), 0);
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn get(&self) -> Get<'_, T> {
        Get {
            queue: self,
            ticket: None,
            leaf: Leaf::at(Location::caller()),
        }
    }

    /// Adds `item`, waiting (as a task) while the queue is full.
    ///
    /// A `FutureWait` trap while it waits: cancellable and timeout-able; an
    /// interrupted `put` has not added its item (it is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let queue = trapline::UniversalQueue::bounded(2);
    ///     queue.put("a").await?;
    ///     assert_eq!(queue.try_get(), Some("a"));
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn put(&self, item: T) -> Put<'_, T> {
        Put {
            queue: self,
            item: Some(item),
            ticket: None,
            leaf: Leaf::at(Location::caller()),
        }
    }
}

fn refuse_on_kernel_thread(what: &'static str) -> Result<(), TrapError> {
    if trapline_traps::in_kernel() {
        log::warn!("{what} refused on a kernel thread: it would stall every task");
        return Err(TrapError::Unsupported(
            "a blocking queue call on a kernel thread would stall every task; await get/put",
        ));
    }
    Ok(())
}
