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

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use trapline_traps::{Leaf, Trap, TrapError};

/// Tasks waiting on one side of the queue, oldest first, by ticket.
#[derive(Default)]
struct Sleepers {
    next: u64,
    list: VecDeque<(u64, Waker)>,
}

impl Sleepers {
    /// Records (or refreshes) the waker of ticket `mine`; returns the ticket.
    fn wait(&mut self, mine: Option<u64>, waker: &Waker) -> u64 {
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
    fn leave(&mut self, ticket: u64) -> bool {
        let before = self.list.len();
        self.list.retain(|(id, _)| *id != ticket);
        self.list.len() != before
    }

    fn take_one(&mut self) -> Option<Waker> {
        self.list.pop_front().map(|(_, w)| w)
    }
}

struct State<T> {
    items: VecDeque<T>,
    capacity: Option<usize>,
    getters: Sleepers,
    putters: Sleepers,
}

impl<T> State<T> {
    fn full(&self) -> bool {
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

    fn lock(&self) -> MutexGuard<'_, State<T>> {
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
        let wake = s.putters.take_one();
        drop(s);
        self.shared.changed.notify_all();
        if let Some(w) = wake {
            w.wake();
        }
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
        let wake = s.getters.take_one();
        drop(s);
        self.shared.changed.notify_all();
        if let Some(w) = wake {
            w.wake();
        }
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
                let wake = s.putters.take_one();
                drop(s);
                self.shared.changed.notify_all();
                if let Some(w) = wake {
                    w.wake();
                }
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
        let wake = s.getters.take_one();
        drop(s);
        self.shared.changed.notify_all();
        if let Some(w) = wake {
            w.wake();
        }
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

/// The future of [`UniversalQueue::get`].
///
/// # Examples
///
/// ```
/// trapline::run(async {
///     let queue = trapline::UniversalQueue::unbounded();
///     queue.try_put(1).unwrap();
///     let get: trapline::universal_queue::Get<'_, i32> = queue.get();
///     assert_eq!(get.await?, 1);
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    queue: &'a UniversalQueue<T>,
    ticket: Option<u64>,
    leaf: Leaf,
}

impl<T> fmt::Debug for Get<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get").field("queue", self.queue).finish()
    }
}

impl<T> Future for Get<'_, T> {
    type Output = Result<T, TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut s = this.queue.lock();
        if let Some(item) = s.items.pop_front() {
            if let Some(t) = this.ticket.take() {
                s.getters.leave(t);
            }
            let wake = s.putters.take_one();
            drop(s);
            this.queue.shared.changed.notify_all();
            if let Some(w) = wake {
                w.wake();
            }
            this.leaf.done();
            return Poll::Ready(Ok(item));
        }
        // Keeps its place in line if it still has one.
        this.ticket = Some(s.getters.wait(this.ticket, cx.waker()));
        drop(s);
        match this.leaf.trap(cx, Trap::FutureWait) {
            Ok(()) => Poll::Pending,
            Err(e) => {
                this.abandon();
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<T> Get<'_, T> {
    /// Leaves the line; if a `put` had already taken our waker for an item
    /// we will not take, wakes the next getter in our place.
    fn abandon(&mut self) {
        let Some(t) = self.ticket.take() else { return };
        let mut s = self.queue.lock();
        let woken = !s.getters.leave(t);
        let next = (woken && !s.items.is_empty())
            .then(|| s.getters.take_one())
            .flatten();
        drop(s);
        if let Some(w) = next {
            w.wake();
        }
    }
}

impl<T> Drop for Get<'_, T> {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// The future of [`UniversalQueue::put`].
///
/// # Examples
///
/// ```
/// trapline::run(async {
///     let queue = trapline::UniversalQueue::unbounded();
///     let put: trapline::universal_queue::Put<'_, i32> = queue.put(5);
///     put.await?;
///     assert_eq!(queue.len(), 1);
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Put<'a, T> {
    queue: &'a UniversalQueue<T>,
    item: Option<T>,
    ticket: Option<u64>,
    leaf: Leaf,
}

impl<T> fmt::Debug for Put<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put").field("queue", self.queue).finish()
    }
}

impl<T> Unpin for Put<'_, T> {}

impl<T> Future for Put<'_, T> {
    type Output = Result<(), TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut s = this.queue.lock();
        if !s.full() {
            if let Some(t) = this.ticket.take() {
                s.putters.leave(t);
            }
            let Some(item) = this.item.take() else {
                return Poll::Ready(Ok(())); // polled after it completed
            };
            s.items.push_back(item);
            let wake = s.getters.take_one();
            drop(s);
            this.queue.shared.changed.notify_all();
            if let Some(w) = wake {
                w.wake();
            }
            this.leaf.done();
            return Poll::Ready(Ok(()));
        }
        this.ticket = Some(s.putters.wait(this.ticket, cx.waker()));
        drop(s);
        match this.leaf.trap(cx, Trap::FutureWait) {
            Ok(()) => Poll::Pending,
            Err(e) => {
                this.abandon();
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<T> Put<'_, T> {
    /// Leaves the line; passes on a wake for room it will not use.
    fn abandon(&mut self) {
        let Some(t) = self.ticket.take() else { return };
        let mut s = self.queue.lock();
        let woken = !s.putters.leave(t);
        let next = (woken && !s.full()).then(|| s.putters.take_one()).flatten();
        drop(s);
        if let Some(w) = next {
            w.wake();
        }
    }
}

impl<T> Drop for Put<'_, T> {
    fn drop(&mut self) {
        self.abandon();
    }
}
