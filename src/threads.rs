//! One kernel per core: `run_threads` starts N kernels on N threads.
//!
//! trapline does not steal work between threads. Each kernel is the plain
//! single-threaded loop, with its own tasks, sockets and timers, and no lock
//! on its hot path. Spreading the load is left to the OS: each kernel binds
//! its own listener to the same port with `SO_REUSEPORT`
//! ([`crate::net::ListenerBuilder::reuse_port`]) and Linux hashes incoming
//! connections across them. Kernels that must talk do it through a
//! [`Handle`] (start a task on another kernel, get its output back) or any
//! channel whose receiver is woken through its `Waker`.
//!
//! Discussion: the kernels end together. A kernel that ended as soon as its
//! own main future did would refuse the requests its peers still send it,
//! so a kernel whose main future is done waits (still running its tasks)
//! until every main future is done.
//!
//! The handles of all kernels are handed to every kernel before
//! any of them starts its main future, so the first thing a kernel does may
//! already be to reach another. That takes a barrier: each thread builds its
//! kernel, publishes its handle, and waits for the others. If any kernel
//! cannot be built (no epoll instance), none runs, and the first error is
//! returned; a `builder` that panics is caught so that its thread still
//! reaches the barrier, and the panic is raised again once all have ended.
//! Likewise a main future that panics counts as ended (a guard made before
//! it starts does the counting when it is dropped), so its peers are not
//! kept waiting for it.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use trapline_kernel::{Builder, Handle};

/// What a kernel started by [`run_threads`] knows about itself and its peers.
///
/// # Examples
///
/// ```
/// let seen = trapline::run_threads(2, |me| async move { (me.index(), me.count()) })?;
/// assert_eq!(seen, [(0, 2), (1, 2)]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct KernelThread {
    index: usize,
    handles: Arc<[Handle]>,
}

impl KernelThread {
    /// This kernel's place, `0..count()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let indexes = trapline::run_threads(3, |me| async move { me.index() })?;
    /// assert_eq!(indexes, [0, 1, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many kernels [`run_threads`] started.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::run_threads(2, |me| async move { me.count() })?, [2, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The handle of kernel `index` (this one included); `None` past the last.
    ///
    /// # Examples
    ///
    /// Each kernel asks its right-hand neighbour for the neighbour's index:
    ///
    /// ```
    /// let answers = trapline::run_threads(2, |me| async move {
    ///     let next = (me.index() + 1) % me.count();
    ///     let peer = me.handle(next).expect("next is below count()").clone();
    ///     assert!(me.handle(me.count()).is_none());
    ///     peer.spawn(move || async move { next * 10 }).await
    /// })?;
    /// assert_eq!(answers, [Ok(10), Ok(0)]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle(&self, index: usize) -> Option<&Handle> {
        self.handles.get(index)
    }

    /// The handles of every kernel, in index order.
    ///
    /// # Examples
    ///
    /// ```
    /// let ids = trapline::run_threads(2, |me| async move {
    ///     me.handles().iter().map(|h| h.id()).collect::<Vec<_>>()
    /// })?;
    /// assert_eq!(ids[0], ids[1], "every kernel sees the same list");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }
}

impl fmt::Debug for KernelThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelThread")
            .field("index", &self.index)
            .field("count", &self.handles.len())
            .finish()
    }
}

/// Runs `n` kernels on `n` new threads; kernel `i` runs `f(thread i)` as its
/// main future, with every task it spawns. Returns the outputs in index
/// order, once all have ended.
///
/// The kernels end together: a kernel whose main future has ended keeps
/// running — its other tasks, and tasks other kernels start on it through
/// its [`Handle`] — until every main future has ended; then each shuts down
/// as [`crate::run`] does.
///
/// `n` of 0 is an `InvalidInput` error. A panic in a main future ends that
/// kernel (as in [`crate::run`]) and counts as its main future having ended,
/// so the others are not kept waiting for it; once every thread has ended,
/// the first panic (in index order) is raised again here. A kernel that
/// asks the panicked one for work after it ended gets an error from its
/// [`Handle`].
///
/// # Examples
///
/// Two kernels, each with its own `SO_REUSEPORT` listener on one port:
///
/// ```no_run
/// use trapline::net::TcpListener;
///
/// trapline::run_threads(2, |me| async move {
///     let listener = TcpListener::builder("127.0.0.1:7000".parse().unwrap())
///         .reuse_port(true)
///         .nodelay(true)
///         .bind()?;
///     loop {
///         let (stream, _) = listener.accept().await?;
///         println!("kernel {} took a connection", me.index());
///         drop(stream);
///     }
///     # #[allow(unreachable_code)]
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run_threads<F, Fut>(n: usize, f: F) -> io::Result<Vec<Fut::Output>>
where
    F: Fn(KernelThread) -> Fut + Sync,
    Fut: Future,
    Fut::Output: Send,
{
    run_threads_with(|_| Builder::new(), n, f)
}

/// [`run_threads`] with each kernel's settings from `builder(index)`, called
/// on that kernel's thread (a `Builder` may hold hooks, which stay on their
/// thread).
///
/// If `builder` panics (or a kernel cannot be built), no main future runs:
/// every thread ends, then the panic is raised again here (a build error is
/// returned).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use trapline::Builder;
///
/// let quick = |_| Builder::new().shutdown_grace(Duration::from_millis(10));
/// let out = trapline::run_threads_with(quick, 2, |me| async move { me.index() * 2 })?;
/// assert_eq!(out, [0, 2]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run_threads_with<B, F, Fut>(builder: B, n: usize, f: F) -> io::Result<Vec<Fut::Output>>
where
    B: Fn(usize) -> Builder + Sync,
    F: Fn(KernelThread) -> Fut + Sync,
    Fut: Future,
    Fut::Output: Send,
{
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "run_threads needs at least one kernel",
        ));
    }
    let published: Mutex<Vec<Option<Handle>>> = Mutex::new(vec![None; n]);
    let failure: Mutex<Option<io::Error>> = Mutex::new(None);
    let barrier = Gate::new(n);
    let together = Together::new(n);
    let all: Mutex<Option<Arc<[Handle]>>> = Mutex::new(None);
    let builder_panic: Mutex<Option<Panic>> = Mutex::new(None);
    let results = std::thread::scope(|scope| {
        let threads: io::Result<Vec<_>> = (0..n)
            .map(|index| {
                let (f, published, failure, barrier, all, together, builder, builder_panic) = (
                    &f,
                    &published,
                    &failure,
                    &barrier,
                    &all,
                    &together,
                    &builder,
                    &builder_panic,
                );
                std::thread::Builder::new()
                    .name(format!("trapline-{index}"))
                    .spawn_scoped(scope, move || -> Option<io::Result<Fut::Output>> {
                        // Every thread must reach the barrier, or the others
                        // wait there for ever: a panic in `builder` is caught,
                        // recorded as a failure, and raised again at the end.
                        let kernel = match catch_unwind(AssertUnwindSafe(|| builder(index))) {
                            Ok(b) => b.build(),
                            Err(panic) => {
                                lock(builder_panic).get_or_insert(panic);
                                Err(io::Error::other(format!(
                                    "the builder of kernel {index} panicked"
                                )))
                            }
                        };
                        match &kernel {
                            Ok(k) => lock(published)[index] = Some(k.handle()),
                            Err(e) => {
                                lock(failure)
                                    .get_or_insert(io::Error::new(e.kind(), e.to_string()));
                            }
                        }
                        barrier.wait();
                        let mut kernel = kernel.ok()?;
                        if lock(failure).is_some() {
                            return None;
                        }
                        let handles = lock(all)
                            .get_or_insert_with(|| {
                                lock(published).iter().flatten().cloned().collect()
                            })
                            .clone();
                        let me = KernelThread { index, handles };
                        Some(kernel.run(async {
                            // Made before `f` runs: if the main future panics,
                            // dropping it counts this kernel as arrived.
                            let mut arrival = together.arrival();
                            let out = f(me).await;
                            arrival.arrive().await;
                            out
                        }))
                    })
            })
            .collect::<io::Result<_>>();
        let threads = match threads {
            Ok(threads) => threads,
            Err(e) => {
                // The threads already started are let through the gate;
                // they see the failure and end without running.
                lock(&failure).get_or_insert(e);
                barrier.abort();
                Vec::new()
            }
        };
        // Join them all before raising the first panic.
        let joined: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
        joined
            .into_iter()
            .map(|r| r.unwrap_or_else(|panic| resume_unwind(panic)))
            .collect::<Vec<_>>()
    });
    if let Some(panic) = lock(&builder_panic).take() {
        resume_unwind(panic);
    }
    if let Some(e) = lock(&failure).take() {
        return Err(e);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("a kernel did not start"))))
        .collect()
}

/// A caught panic's payload.
type Panic = Box<dyn Any + Send>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A barrier that can also be opened early, when a thread fails to start.
struct Gate {
    state: Mutex<(usize, bool)>,
    all_here: Condvar,
    n: usize,
}

impl Gate {
    fn new(n: usize) -> Gate {
        Gate {
            state: Mutex::new((0, false)),
            all_here: Condvar::new(),
            n,
        }
    }

    /// Waits until all `n` threads have arrived, or the gate is opened.
    fn wait(&self) {
        let mut state = lock(&self.state);
        state.0 += 1;
        if state.0 >= self.n {
            self.all_here.notify_all();
        }
        while state.0 < self.n && !state.1 {
            state = self
                .all_here
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn abort(&self) {
        lock(&self.state).1 = true;
        self.all_here.notify_all();
    }
}

/// Where main futures that have ended wait for the others.
struct Together {
    state: Mutex<(usize, Vec<std::task::Waker>)>,
}

impl Together {
    fn new(n: usize) -> Together {
        Together {
            state: Mutex::new((n, Vec::new())),
        }
    }

    /// A guard for one main future: it counts as arrived when
    /// [`Arrival::arrive`] is called or, if it never is (the main future
    /// panicked or was dropped), when the guard is dropped.
    fn arrival(&self) -> Arrival<'_> {
        Arrival {
            together: self,
            arrived: false,
        }
    }

    /// Counts one main future as ended and wakes the ones waiting.
    fn count_one(&self) {
        let wakers = {
            let mut state = lock(&self.state);
            state.0 -= 1;
            std::mem::take(&mut state.1)
        };
        for waker in wakers {
            waker.wake();
        }
    }
}

/// One main future's place in [`Together`]; see [`Together::arrival`].
struct Arrival<'a> {
    together: &'a Together,
    arrived: bool,
}

impl Arrival<'_> {
    /// This main future has ended: waits until all have.
    async fn arrive(&mut self) {
        if !self.arrived {
            self.arrived = true;
            self.together.count_one();
        }
        let together = self.together;
        std::future::poll_fn(|cx| {
            let mut state = lock(&together.state);
            if state.0 == 0 {
                std::task::Poll::Ready(())
            } else {
                if !state.1.iter().any(|w| w.will_wake(cx.waker())) {
                    state.1.push(cx.waker().clone());
                }
                std::task::Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        if !self.arrived {
            self.arrived = true;
            self.together.count_one();
        }
    }
}
