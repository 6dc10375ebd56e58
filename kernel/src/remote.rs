//! Handles: reaching a kernel from another thread, to start a task on it.
//!
//! A kernel is single-threaded and its tasks may be `!Send`, so nothing can
//! hand it a task directly. What crosses threads is a *recipe*: a `Send`
//! closure that builds the future on the kernel's own thread. A [`Handle`]
//! pushes the recipe onto the kernel's injection queue and rings the same
//! `mio::Waker` that cross-thread wakes use; the kernel takes the queue at the
//! start of every pass and spawns one task per recipe. The task's output
//! travels back through a [`RemoteJoin`], a future any thread can wait on.
//!
//! This is the one thread-safe way into a kernel besides a `Waker`. Kernels
//! on different threads (one per core, see `trapline::run_threads`) talk
//! through it, or through any channel whose receiver is woken by a `Waker`.
//!
//! Discussion: a recipe queued to a kernel that has ended is dropped at once,
//! and one queued while no `run` is in progress waits for the next `run`.
//! Either way its `RemoteJoin` learns the truth: the output, or
//! [`RemoteError`] when the task ended without one (never started, panicked,
//! or was dropped at shutdown). No recipe is lost silently.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use log::trace;
use trapline_traps::{running, Leaf, TaskFuture, Trap, TrapError};

use crate::hooks::Spawned;
use crate::waker::Remote;
use crate::Kernel;

/// A recipe: builds a task's future on the kernel's thread; and where it
/// was sent from, for the trace and the hooks.
struct Recipe {
    make: Box<dyn FnOnce() -> TaskFuture + Send>,
    location: &'static Location<'static>,
}

/// A kernel's injection queue.
///
/// Discussion: the kernel looks at the queue on every pass, and almost
/// always finds it empty; `pending` lets it see that without the lock. It is
/// set (Release) inside the lock by every push and cleared inside the lock by
/// the take, so a pass that reads it false (Acquire) just before a push sees
/// it on its next pass, which the push's ring guarantees there will be.
#[derive(Default)]
pub(crate) struct Injector {
    queue: Mutex<Queue>,
    pending: AtomicBool,
}

#[derive(Default)]
struct Queue {
    recipes: Vec<Recipe>,
    closed: bool,
}

impl Injector {
    /// Queues `recipe`; false (and the recipe back) if the kernel has ended.
    fn push(&self, recipe: Recipe) -> Result<bool, Recipe> {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.closed {
            return Err(recipe);
        }
        q.recipes.push(recipe);
        self.pending.store(true, Ordering::Release);
        Ok(q.recipes.len() == 1)
    }

    /// Takes every queued recipe; no lock when none is queued.
    #[inline]
    fn take(&self, into: &mut Vec<Recipe>) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        into.append(&mut q.recipes);
        self.pending.store(false, Ordering::Release);
    }

    /// Refuses recipes from now on, and drops the ones still queued (which
    /// tells their joins), outside the lock.
    pub(crate) fn close(&self) {
        let left = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.closed = true;
            std::mem::take(&mut q.recipes)
        };
        drop(left);
    }
}

/// A handle to a kernel: `Send`, `Sync` and cheap to clone; starts tasks on
/// that kernel from any thread.
///
/// A handle keeps a share of its kernel's cross-thread bell (an `eventfd`)
/// and injection queue alive: after the kernel has ended, that one fd stays
/// open until the last handle to it is dropped. Spawning through such a
/// handle gives [`RemoteError`] at once.
///
/// # Examples
///
/// A task started on a kernel running on another thread:
///
/// ```
/// use futures::channel::oneshot;
/// use trapline_kernel::Kernel;
///
/// let (handle_tx, handle_rx) = std::sync::mpsc::channel();
/// let (stop_tx, stop_rx) = oneshot::channel::<()>();
/// let worker = std::thread::spawn(move || {
///     let mut kernel = Kernel::new().unwrap();
///     handle_tx.send(kernel.handle()).unwrap();
///     kernel.run(stop_rx).unwrap() // runs until told to stop
/// });
/// let handle = handle_rx.recv().unwrap();
/// let answer = handle.spawn(|| async {
///     let not_send = std::rc::Rc::new(6 * 7); // built and used on the worker
///     *not_send
/// });
/// assert_eq!(futures::executor::block_on(answer), Ok(42));
/// stop_tx.send(()).unwrap();
/// worker.join().unwrap().unwrap();
/// ```
#[derive(Clone)]
pub struct Handle {
    id: u16,
    injector: Arc<Injector>,
    remote: Arc<Remote>,
}

impl Handle {
    /// Starts a task on the kernel: `make` is sent to the kernel's thread
    /// and called there, and the future it returns runs as a task (it need
    /// not be `Send`). Await the returned [`RemoteJoin`] for its output.
    ///
    /// The task starts at the kernel's next pass; if the kernel is between
    /// runs, at its next run; if it has ended, never (the join gives
    /// [`RemoteError`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use trapline_kernel::Kernel;
    ///
    /// let mut kernel = Kernel::new()?;
    /// let handle = kernel.handle();
    /// let out = kernel.run(async move {
    ///     // From inside the kernel, too: the task runs beside this one.
    ///     handle.spawn(|| async { *Rc::new(5) }).await
    /// })?;
    /// assert_eq!(out, Ok(5));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, Fut>(&self, make: F) -> RemoteJoin<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let slot = Arc::new(Mutex::new(Slot {
            outcome: None,
            waker: None,
        }));
        let sender = Sender { slot: slot.clone() };
        let recipe = Recipe {
            make: Box::new(move || {
                Box::pin(async move {
                    let sender = sender;
                    let output = make().await;
                    sender.send(Ok(output));
                })
            }),
            location: Location::caller(),
        };
        match self.injector.push(recipe) {
            Ok(first) => {
                if first {
                    self.remote.ring();
                }
            }
            // The kernel has ended: dropping the recipe drops its sender,
            // which tells the join.
            Err(recipe) => drop(recipe),
        }
        RemoteJoin {
            slot,
            leaf: Leaf::at(Location::caller()),
        }
    }

    /// The kernel's id, unique among the kernels alive in this process.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Kernel;
    ///
    /// let a = Kernel::new()?;
    /// let b = Kernel::new()?;
    /// assert_ne!(a.handle().id(), b.handle().id());
    /// assert_eq!(a.handle().id(), a.handle().id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The handle of the kernel running on this thread, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::{Handle, Kernel};
    ///
    /// assert!(Handle::current().is_none());
    /// let mut kernel = Kernel::new()?;
    /// let id = kernel.handle().id();
    /// let inside = kernel.run(async { Handle::current().map(|h| h.id()) })?;
    /// assert_eq!(inside, Some(id));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn current() -> Option<Handle> {
        CURRENT.with(|c| c.borrow().clone())
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("kernel", &self.id).finish()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// Makes `handle` this thread's current one until the guard drops.
pub(crate) fn enter(handle: Handle) -> CurrentGuard {
    CurrentGuard(CURRENT.with(|c| c.borrow_mut().replace(handle)))
}

/// See [`enter`].
pub(crate) struct CurrentGuard(Option<Handle>);

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
    }
}

impl Kernel {
    /// A [`Handle`] to this kernel, for other threads (or tasks) to start
    /// tasks on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Kernel;
    ///
    /// let mut kernel = Kernel::new()?;
    /// let join = kernel.handle().spawn(|| async { "queued before the run" });
    /// kernel.run(async {})?; // the queued task runs during this run
    /// assert_eq!(futures::executor::block_on(join), Ok("queued before the run"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle(&self) -> Handle {
        Handle {
            id: self.id,
            injector: self.injector.clone(),
            remote: self.remote.clone(),
        }
    }

    /// Spawns a task for every recipe queued through a handle.
    pub(crate) fn take_injected(&mut self) {
        let mut recipes = Vec::new();
        self.injector.take(&mut recipes);
        if recipes.is_empty() {
            return; // the common case: no other thread spawned here
        }
        for recipe in recipes {
            // Only builds the future; user code runs when the task is polled.
            let future = (recipe.make)();
            let mut st = self.shared.state.borrow_mut();
            if st.can_spawn().is_err() {
                drop(st);
                drop(future); // its join learns it never ran
                continue;
            }
            let id = st.spawn(Some(future));
            let at = st.now();
            drop(st);
            trace!(target: "trapline::trap", "remote spawn {id} at {}", recipe.location);
            if self.shared.hooks.on() {
                let spawned = Spawned {
                    name: None,
                    location: recipe.location,
                    parent: None,
                    at,
                };
                self.shared.hooks.created(id, &spawned); // user code, no borrow held
            }
        }
    }
}

/// Why a [`RemoteJoin`] has no output.
///
/// # Examples
///
/// ```
/// use trapline_kernel::{Kernel, RemoteError};
///
/// let handle = Kernel::new()?.handle(); // the kernel is dropped here
/// let join = handle.spawn(|| async { 1 });
/// assert_eq!(futures::executor::block_on(join), Err(RemoteError::Ended));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// The task ended without an output: its kernel had ended or was
    /// shutting down, or the task panicked or was dropped at shutdown.
    Ended,
    /// The trapline task awaiting the join was interrupted at its
    /// `FutureWait` trap (cancelled, or a timeout passed). The remote task
    /// is not affected: it runs on, and its output is dropped.
    Interrupted(TrapError),
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::Ended => f.write_str("the remote task ended without an output"),
            RemoteError::Interrupted(e) => write!(f, "the wait for a remote task: {e}"),
        }
    }
}

impl std::error::Error for RemoteError {}

struct Slot<T> {
    outcome: Option<Result<T, RemoteError>>,
    waker: Option<Waker>,
}

/// The task's side: sends the output, or `RemoteError` if dropped first.
struct Sender<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Sender<T> {
    fn send(&self, outcome: Result<T, RemoteError>) {
        let waker = {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.outcome.is_some() {
                return;
            }
            slot.outcome = Some(outcome);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.send(Err(RemoteError::Ended));
    }
}

/// The output of a task started with [`Handle::spawn`]; a future that any
/// thread (or any runtime) can await.
///
/// Awaited inside a trapline task, it waits at a `FutureWait` trap, so the
/// task can be cancelled or timed out there: the join then ends with
/// [`RemoteError::Interrupted`]. Outside a trapline task it is a plain
/// future, woken when the output arrives.
///
/// Dropping a `RemoteJoin` does not cancel the remote task: it runs to its
/// end on its kernel and its output is dropped there. To stop it, have the
/// task watch for a signal of your own (a channel, a flag) and end itself.
///
/// # Examples
///
/// ```
/// use trapline_kernel::Kernel;
///
/// let mut kernel = Kernel::new()?;
/// let join = kernel.handle().spawn(|| async { vec![1, 2, 3] });
/// kernel.run(async {})?;
/// assert_eq!(futures::executor::block_on(join), Ok(vec![1, 2, 3]));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RemoteJoin<T> {
    slot: Arc<Mutex<Slot<T>>>,
    /// The `FutureWait` leaf, used only inside a trapline task.
    leaf: Leaf,
}

impl<T> Future for RemoteJoin<T> {
    type Output = Result<T, RemoteError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let in_task = running().is_some();
        // Parked before: an interrupt delivered meanwhile comes first.
        let parked = in_task && this.leaf.ticket().is_some();
        if parked {
            if let Err(e) = this.leaf.trap(cx, Trap::FutureWait) {
                return Poll::Ready(Err(RemoteError::Interrupted(e)));
            }
        }
        {
            let mut slot = this.slot.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(outcome) = slot.outcome.take() {
                drop(slot);
                this.leaf.done();
                return Poll::Ready(outcome);
            }
            // Stored under the lock: the sender either sees this waker or
            // has already stored the outcome, which the next poll finds.
            slot.waker = Some(cx.waker().clone());
        }
        if !in_task || parked {
            return Poll::Pending;
        }
        match this.leaf.trap(cx, Trap::FutureWait) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(RemoteError::Interrupted(e))),
        }
    }
}

impl<T> fmt::Debug for RemoteJoin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoin").finish_non_exhaustive()
    }
}
