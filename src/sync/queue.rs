//! `Queue<T>`: a FIFO of items between tasks, bounded or not, with
//! `join`/`task_done` to wait until every item has been processed.
//!
//! Items are handed over, never left for a waiter to fetch. A `put` that
//! finds a getter waiting gives the item to the oldest getter directly; a
//! `get` that frees room moves the oldest waiting putter's item into the
//! queue. Either way the waiter is notified only once the item has moved.
//!
//! Discussion: that hand-over is what makes interrupts safe. A getter
//! interrupted before it was handed an item leaves the line and takes
//! nothing; one handed an item at the same moment it is interrupted returns
//! the item (its leaf can make progress); one dropped while holding an item
//! it never looked at gives the item to the next getter, or back to the
//! front of the queue. A putter interrupted before its item moved in leaves
//! with its item, which is dropped and never added; once notified its item is
//! in, whole. So no item is lost, duplicated or half-added.
//!
//! An item handed to a getter keeps its place against the capacity until
//! the getter takes it (`is_full` counts it), so a bounded queue never holds
//! more than its capacity, even when such an item comes back to the front:
//! a putter that would need that place waits until the getter has taken
//! the item, or given it back and the item has been taken again.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::Location;

use trapline_traps::TrapError;

use super::waitlist::{Entry, WaitList, Waiting};
use super::Misuse;

struct State<T> {
    items: VecDeque<T>,
    capacity: Option<usize>,
    unfinished: usize,
    /// Items handed to getters that have not taken them yet: they keep
    /// their places against the capacity (see the module's Discussion).
    handed: usize,
}

/// A FIFO queue between tasks of one kernel.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use trapline::sync::Queue;
///
/// trapline::run(async {
///     let queue = Rc::new(Queue::bounded(2));
///     let q = queue.clone();
///     let producer = trapline::spawn(async move {
///         for i in 0..5 {
///             q.put(i).await?; // waits while the queue is full
///         }
///         Ok::<(), trapline::TrapError>(())
///     })?;
///     let mut got = Vec::new();
///     for _ in 0..5 {
///         got.push(queue.get().await?);
///         queue.task_done()?;
///     }
///     producer.join().await??;
///     assert_eq!(got, [0, 1, 2, 3, 4]);
///     queue.join().await?; // every item processed
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    state: RefCell<State<T>>,
    getters: WaitList<T>,
    putters: WaitList<T>,
    joiners: WaitList<()>,
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("Queue")
            .field("len", &s.items.len())
            .field("capacity", &s.capacity)
            .field("unfinished", &s.unfinished)
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .finish()
    }
}

impl<T> Queue<T> {
    fn with_capacity(capacity: Option<usize>) -> Queue<T> {
        Queue {
            state: RefCell::new(State {
                items: VecDeque::new(),
                capacity,
                unfinished: 0,
                handed: 0,
            }),
            getters: WaitList::default(),
            putters: WaitList::default(),
            joiners: WaitList::default(),
        }
    }

    /// A queue without a limit: `put` never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::sync::Queue::<u8>::unbounded();
    /// assert_eq!(queue.capacity(), None);
    /// ```
    pub fn unbounded() -> Queue<T> {
        Queue::with_capacity(None)
    }

    /// A queue holding at most `capacity` items: `put` waits while it is
    /// full. A capacity of 0 is taken as 1 (a queue that can hold nothing
    /// could never pass an item on).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::sync::Queue::<u8>::bounded(0);
    /// assert_eq!(queue.capacity(), Some(1));
    /// ```
    pub fn bounded(capacity: usize) -> Queue<T> {
        Queue::with_capacity(Some(capacity.max(1)))
    }

    /// The most items it holds, if bounded.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Queue::<u8>::bounded(4).capacity(), Some(4));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.state.borrow().capacity
    }

    /// How many items it holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::sync::Queue::unbounded();
    /// queue.try_put('a').unwrap();
    /// assert_eq!(queue.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.state.borrow().items.len()
    }

    /// Whether it holds no item.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(trapline::sync::Queue::<u8>::unbounded().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a `put` would wait: the items held, and those handed to
    /// getters that have not taken them yet, fill the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::sync::Queue::bounded(1);
    /// queue.try_put(1).unwrap();
    /// assert!(queue.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        let s = self.state.borrow();
        s.capacity.is_some_and(|c| s.items.len() + s.handed >= c)
    }

    /// How many tasks wait in `get`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Queue::<u8>::unbounded().getters(), 0);
    /// ```
    pub fn getters(&self) -> usize {
        self.getters.len()
    }

    /// How many tasks wait in `put`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::sync::Queue::<u8>::unbounded().putters(), 0);
    /// ```
    pub fn putters(&self) -> usize {
        self.putters.len()
    }

    /// How many items were put and not yet marked done with [`Queue::task_done`].
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::sync::Queue::unbounded();
    /// queue.try_put(1).unwrap();
    /// queue.try_get();
    /// assert_eq!(queue.unfinished(), 1, "taken, not yet done");
    /// ```
    pub fn unfinished(&self) -> usize {
        self.state.borrow().unfinished
    }

    /// Takes the oldest item, if there is one, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::sync::Queue::unbounded();
    /// assert_eq!(queue.try_get(), None);
    /// queue.try_put(5).unwrap();
    /// assert_eq!(queue.try_get(), Some(5));
    /// ```
    pub fn try_get(&self) -> Option<T> {
        let item = self.state.borrow_mut().items.pop_front()?;
        self.admit_putters();
        Some(item)
    }

    /// Adds `item` without waiting; gives it back if the queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::sync::Queue::bounded(1);
    /// assert_eq!(queue.try_put('a'), Ok(()));
    /// assert_eq!(queue.try_put('b'), Err('b'));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), T> {
        if let Some(getter) = self.getters.pop_front() {
            self.state.borrow_mut().unfinished += 1;
            self.hand(&getter, item);
            return Ok(());
        }
        if self.is_full() || !self.putters.is_empty() {
            return Err(item);
        }
        let mut s = self.state.borrow_mut();
        s.items.push_back(item);
        s.unfinished += 1;
        Ok(())
    }

    /// Takes the oldest item, waiting for one if the queue is empty.
    ///
    /// A `SchedWait` trap when it waits: cancellable and timeout-able. An
    /// interrupted `get` takes no item, and none is lost (see the module's
    /// Discussion).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{sync::Queue, timeout_after, TrapError};
    ///
    /// trapline::run(async {
    ///     let queue = Queue::unbounded();
    ///     let waited = timeout_after(Duration::from_millis(5), queue.get()).await;
    ///     assert!(matches!(waited, Err(TrapError::TimedOut(_))));
    ///     queue.put("later").await?;
    ///     assert_eq!(queue.get().await?, "later");
    ///     Ok::<(), TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<T, TrapError>> + '_ {
        let location = Location::caller();
        async move {
            if let Some(item) = self.try_get() {
                return Ok(item);
            }
            let mut wait = GetWait {
                queue: self,
                waiting: Waiting::new(self.getters.push(None), location),
            };
            wait.waiting.wait().await?;
            let item = wait.waiting.entry().payload.borrow_mut().take();
            // Notified means an item was handed over; a kernel whose
            // bookkeeping broke would be a bug, not a user's error.
            let item = item.expect("trapline: a getter was notified without an item");
            // Taken: its place is free.
            self.state.borrow_mut().handed -= 1;
            self.admit_putters();
            Ok(item)
        }
    }

    /// Adds `item` at the back, waiting while a bounded queue is full.
    ///
    /// A `SchedWait` trap when it waits: cancellable and timeout-able. An
    /// interrupted `put` has not added its item (it is dropped); a `put`
    /// that returns `Ok` added it whole.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{sync::Queue, timeout_after, TrapError};
    ///
    /// trapline::run(async {
    ///     let queue = Queue::bounded(1);
    ///     queue.put(1).await?;
    ///     let waited = timeout_after(Duration::from_millis(5), queue.put(2)).await;
    ///     assert!(matches!(waited, Err(TrapError::TimedOut(_))));
    ///     assert_eq!((queue.len(), queue.putters()), (1, 0));
    ///     assert_eq!(queue.get().await?, 1);
    ///     Ok::<(), TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn put(&self, item: T) -> impl Future<Output = Result<(), TrapError>> + '_ {
        let location = Location::caller();
        async move {
            let item = match self.try_put(item) {
                Ok(()) => return Ok(()),
                Err(item) => item,
            };
            let mut wait = PutWait {
                queue: self,
                waiting: Waiting::new(self.putters.push(Some(item)), location),
            };
            wait.waiting.wait().await
        }
    }

    /// Marks one item taken with `get` as processed. Fails if more items
    /// are marked done than were put.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = trapline::sync::Queue::unbounded();
    /// queue.try_put(1).unwrap();
    /// queue.try_get();
    /// assert!(queue.task_done().is_ok());
    /// assert!(queue.task_done().is_err(), "nothing left to mark");
    /// ```
    pub fn task_done(&self) -> Result<(), Misuse> {
        let left = {
            let mut s = self.state.borrow_mut();
            if s.unfinished == 0 {
                return Err(Misuse(
                    "Queue::task_done called more times than items were put",
                ));
            }
            s.unfinished -= 1;
            s.unfinished
        };
        if left == 0 {
            for joiner in self.joiners.take_all() {
                joiner.notify();
            }
        }
        Ok(())
    }

    /// Waits until every item put has been marked done.
    ///
    /// A `SchedWait` trap unless nothing is unfinished: cancellable and
    /// timeout-able.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let queue = trapline::sync::Queue::<u8>::unbounded();
    ///     queue.join().await // nothing was put
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn join(&self) -> impl Future<Output = Result<(), TrapError>> + '_ {
        let location = Location::caller();
        async move {
            if self.unfinished() == 0 {
                return Ok(());
            }
            let mut wait = JoinWait {
                queue: self,
                waiting: Waiting::new(self.joiners.push(None), location),
            };
            wait.waiting.wait().await
        }
    }

    /// Room was made: move waiting putters' items in, oldest first.
    fn admit_putters(&self) {
        while !self.is_full() {
            let Some(putter) = self.putters.pop_front() else {
                return;
            };
            if let Some(item) = putter.payload.borrow_mut().take() {
                let mut s = self.state.borrow_mut();
                s.items.push_back(item);
                s.unfinished += 1;
            }
            putter.notify();
        }
    }

    /// Hands `item` to `getter`; it holds its place until taken.
    fn hand(&self, getter: &Entry<T>, item: T) {
        self.state.borrow_mut().handed += 1;
        *getter.payload.borrow_mut() = Some(item);
        getter.notify();
    }

    /// An item handed to a getter that never looked: to the next getter, or
    /// back to the front of the queue, into the place it kept. It was
    /// counted as unfinished when it was put.
    fn give_back(&self, item: T) {
        self.state.borrow_mut().handed -= 1;
        match self.getters.pop_front() {
            Some(getter) => self.hand(&getter, item),
            None => self.state.borrow_mut().items.push_front(item),
        }
    }
}

/// A getter in line; see the module's Discussion.
struct GetWait<'a, T> {
    queue: &'a Queue<T>,
    waiting: Waiting<T>,
}

impl<T> Drop for GetWait<'_, T> {
    fn drop(&mut self) {
        let entry: &Entry<T> = self.waiting.entry();
        if entry.notified() {
            if let Some(item) = entry.payload.borrow_mut().take() {
                self.queue.give_back(item);
            }
        } else {
            self.queue.getters.remove(self.waiting.entry());
        }
    }
}

/// A putter in line: leaving unserved, its item goes with it.
struct PutWait<'a, T> {
    queue: &'a Queue<T>,
    waiting: Waiting<T>,
}

impl<T> Drop for PutWait<'_, T> {
    fn drop(&mut self) {
        if !self.waiting.entry().notified() {
            self.queue.putters.remove(self.waiting.entry());
        }
    }
}

/// A joiner in line.
struct JoinWait<'a, T> {
    queue: &'a Queue<T>,
    waiting: Waiting<()>,
}

impl<T> Drop for JoinWait<'_, T> {
    fn drop(&mut self) {
        self.queue.joiners.remove(self.waiting.entry());
    }
}
