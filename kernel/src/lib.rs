//! # trapline-kernel: the loop
//!
//! The kernel takes the requests that leaf futures leave in the trap slot
//! (see `trapline-traps`), parks each task in a slab under the condition it
//! asked for — an fd seat watched by mio, an entry in the timer queue, a wait
//! queue, another task's joiner list — and when the condition holds, resumes
//! it: the task's whole chain of awaits is polled again from the top.
//!
//! Principles:
//!
//! - **Park, fire, undo, finish.** That is all the kernel does to a task.
//!   Every park records how to take it back, so a cancellation, a timeout or a
//!   dropped leaf leaves nothing behind.
//! - **Keys are never trusted stale.** Every key that leaves the slab (a mio
//!   token, a waker, a task id) carries a serial; a timer entry carries a tie
//!   and its deadline, which the park or timeout it fires must both hold.
//! - **Single-threaded, no locks on the hot path.** Tasks may be `!Send`.
//!   Only wakes from other threads take a lock.
//! - **Never borrowed while user code runs.** A task's future is taken out of
//!   its slot while it is polled; foreign wakers are woken and finished futures
//!   dropped only after the kernel's state is released.
//!
//! # Layout
//!
//! - `lib.rs`: [`Kernel`], [`Builder`], [`Stats`].
//! - `run`: the loop's pass, polling one task, shutdown.
//! - `state`: the kernel's state and park / fire / undo / finish.
//! - `deadlines`: timeouts, and firing what the timer queue says is due.
//! - `interrupts`: cancellation and expiries resuming the leaves they reach.
//! - `calls`: the answers to immediate traps.
//! - `clock`: the kernel's clock, real or virtual.
//! - `task`: a task record and its parks.
//! - `io`: the fd table, one reader and one writer per fd.
//! - `timers`: the timer heap with lazy deletion.
//! - `timerfd`: the deadline timer that makes sub-millisecond sleeps precise.
//! - `waker`: task wakers, local and cross-thread wakes.
//! - `hooks`: [`Hooks`], callbacks on a task's life (created, running,
//!   suspended, terminated).
//! - `probe`: [`Probe`], a read-only window onto a running kernel.
//! - `queues`: the wait queues sync primitives park in (`SchedWait`).
//! - `remote`: [`Handle`], starting tasks on a kernel from other threads.
//!
//! # Examples
//!
//! ```
//! use trapline_kernel::Kernel;
//!
//! let mut kernel = Kernel::new()?;
//! let answer = kernel.run(async { 6 * 7 })?;
//! assert_eq!(answer, 42);
//! assert_eq!(kernel.stats().tasks, 0);
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs, rust_2018_idioms)]
#![warn(missing_debug_implementations, clippy::undocumented_unsafe_blocks)]

mod calls;
mod clock;
mod deadlines;
mod hooks;
mod interrupts;
mod io;
mod joiners;
mod probe;
mod queues;
mod remote;
mod run;
mod state;
mod task;
mod timerfd;
mod timers;
mod waker;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use calls::Shared;
use hooks::HookList;
pub use hooks::{Ended, Hooks, Parked, Spawned};
pub use probe::{Probe, TaskState};
use state::State;
use waker::Remote;

pub use remote::{Handle, RemoteError, RemoteJoin};

/// Settings for a [`Kernel`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use trapline_kernel::Builder;
///
/// let mut kernel = Builder::new().shutdown_grace(Duration::from_millis(100)).build()?;
/// kernel.run(async {})?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    grace: Duration,
    events: usize,
    virtual_clock: bool,
    hooks: HookList,
}

impl Builder {
    /// The default settings: a one-second shutdown grace, 1024 events per poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Builder;
    ///
    /// let mut kernel = Builder::new().build()?;
    /// assert_eq!(kernel.run(async { 1 + 1 })?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Builder {
        Builder {
            grace: Duration::from_secs(1),
            events: 1024,
            virtual_clock: false,
            hooks: HookList::default(),
        }
    }

    /// How long tasks still alive when the main future ends may run after
    /// being cancelled, to clean up, before they are dropped.
    ///
    /// The grace is counted on the kernel's clock. With a
    /// [virtual clock](Builder::virtual_clock), a shutdown where every task
    /// left waits and no event is ready jumps to the end of the grace at
    /// once: cleanup waiting for I/O from another thread or process gets no
    /// real time (it is bounded in real time by the grace as well).
    ///
    /// # Examples
    ///
    /// With no grace, a task still alive when the main future ends is dropped at
    /// once, even one that would never reach a trap to see its cancellation:
    ///
    /// ```
    /// use std::future::pending;
    /// use std::time::{Duration, Instant};
    /// use trapline_kernel::Builder;
    ///
    /// let mut kernel = Builder::new().shutdown_grace(Duration::ZERO).build()?;
    /// let started = Instant::now();
    /// kernel.run(async {
    ///     trapline_traps::spawn(Box::pin(pending())).unwrap();
    /// })?;
    /// assert!(started.elapsed() < Duration::from_secs(1), "the default grace is a second");
    /// assert_eq!(kernel.stats().tasks, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_grace(mut self, grace: Duration) -> Builder {
        self.grace = grace;
        self
    }

    /// How many I/O events one `epoll_wait` may return.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Builder;
    ///
    /// // Events past the 64th wait for the next pass of the loop.
    /// let mut kernel = Builder::new().events_per_poll(64).build()?;
    /// kernel.run(async {})?;
    /// // 0 is taken as 1.
    /// Builder::new().events_per_poll(0).build()?.run(async {})?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn events_per_poll(mut self, events: usize) -> Builder {
        self.events = events.max(1);
        self
    }

    /// Gives the kernel a virtual clock: time stands still while any task can
    /// run, and when every task waits, the clock jumps to the next deadline
    /// instead of the kernel sleeping until it.
    ///
    /// Hours of sleeps and timeouts then run in milliseconds, in an order
    /// that is the same on every run. The clock starts at the real time the
    /// kernel is built; [`trapline_traps::clock`] (and every sleep and
    /// timeout) reads it. I/O still happens in real time: the clock does not
    /// wait for bytes in flight, so a deadline can pass "before" an event that
    /// was a few microseconds away. With no deadline left the kernel blocks
    /// in `epoll_wait`, as with a real clock.
    ///
    /// Shutdown counts its [grace](Builder::shutdown_grace) on this clock
    /// too: when the tasks left all wait and no event is ready, the clock
    /// jumps to the end of the grace and they are dropped. Bytes another
    /// thread or process would send in that grace get no real time to
    /// arrive.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline_kernel::Builder;
    ///
    /// use std::future::poll_fn;
    /// use std::task::Poll;
    /// use trapline_traps::{clock, Leaf, Trap};
    ///
    /// let mut kernel = Builder::new().virtual_clock().build()?;
    /// let slept = kernel.run(async {
    ///     let t0 = clock().unwrap();
    ///     let deadline = t0 + Duration::from_secs(3600);
    ///     // A sleep leaf, by hand: trap until the kernel's clock passes the deadline.
    ///     let mut leaf = Leaf::new();
    ///     poll_fn(|cx| {
    ///         if clock().unwrap() >= deadline {
    ///             leaf.done();
    ///             return Poll::Ready(());
    ///         }
    ///         leaf.trap(cx, Trap::Sleep { deadline }).unwrap();
    ///         Poll::Pending
    ///     })
    ///     .await;
    ///     clock().unwrap() - t0
    /// })?;
    /// assert_eq!(slept, Duration::from_secs(3600), "exactly an hour on the kernel's clock");
    /// assert_eq!(kernel.stats().timers, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn virtual_clock(mut self) -> Builder {
        self.virtual_clock = true;
        self
    }

    /// Installs `hooks`: called on every task's creation, each of its polls,
    /// each suspension and its end. Several may be installed; they are called
    /// in the order installed. With none, the kernel pays one branch per poll.
    ///
    /// # Examples
    ///
    /// Two hooks, called in the order installed:
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Instant;
    /// use trapline_kernel::{Builder, Hooks};
    /// use trapline_traps::TaskId;
    ///
    /// struct Say(&'static str, Rc<RefCell<Vec<&'static str>>>);
    /// impl Hooks for Say {
    ///     fn running(&self, _: TaskId, _: Instant) {
    ///         self.1.borrow_mut().push(self.0);
    ///     }
    /// }
    ///
    /// let said = Rc::new(RefCell::new(Vec::new()));
    /// let mut kernel = Builder::new()
    ///     .hooks(Rc::new(Say("first", said.clone())))
    ///     .hooks(Rc::new(Say("second", said.clone())))
    ///     .build()?;
    /// kernel.run(async {})?;
    /// assert_eq!(*said.borrow(), ["first", "second"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn hooks(mut self, hooks: Rc<dyn Hooks>) -> Builder {
        self.hooks.push(hooks);
        self
    }

    /// Makes the kernel: an epoll instance and a cross-thread bell.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline_kernel::Builder;
    ///
    /// let builder = Builder::new().shutdown_grace(Duration::from_millis(100));
    /// // Settings are plain values: one builder can make several kernels.
    /// let mut a = builder.clone().build()?;
    /// let mut b = builder.build()?;
    /// assert_eq!(a.run(async { 1 })? + b.run(async { 2 })?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> std::io::Result<Kernel> {
        let poll = mio::Poll::new()?;
        let bell = mio::Waker::new(poll.registry(), io::BELL)?;
        let remote = Arc::new(Remote::new(bell));
        let id = waker::register(remote.clone())?;
        let registry = poll.registry().try_clone()?;
        // Without a timerfd, deadlines fall back to mio's millisecond timeouts.
        let timer = timerfd::DeadlineTimer::new(poll.registry()).ok();
        let clock = match self.virtual_clock {
            true => clock::Clock::new_virtual(),
            false => clock::Clock::Real,
        };
        Ok(Kernel {
            shared: Rc::new(Shared {
                state: RefCell::new(State::new(registry, clock)),
                hooks: self.hooks,
            }),
            poll,
            events: mio::Events::with_capacity(self.events),
            remote,
            injector: Arc::default(),
            id,
            grace: self.grace,
            posts: Vec::new(),
            wakes: Vec::new(),
            timer,
        })
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

/// A trapline kernel: runs one main future and every task it spawns, on the
/// calling thread.
///
/// # Examples
///
/// The main future runs as a task like any other, and can spawn more:
///
/// ```
/// use trapline_kernel::Kernel;
///
/// let mut kernel = Kernel::new()?;
/// let (main, child) = kernel.run(async {
///     let child = trapline_traps::spawn(Box::pin(async {})).unwrap();
///     (trapline_traps::current().unwrap(), child)
/// })?;
/// assert_ne!(main, child);
/// assert_eq!(kernel.stats().spawned, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Kernel {
    shared: Rc<Shared>,
    poll: mio::Poll,
    events: mio::Events,
    remote: Arc<Remote>,
    injector: Arc<remote::Injector>,
    id: u16,
    grace: Duration,
    posts: Vec<trapline_traps::Post>,
    wakes: Vec<waker::WakeRef>,
    timer: Option<timerfd::DeadlineTimer>,
}

impl Kernel {
    /// A kernel with the default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Kernel;
    ///
    /// let mut kernel = Kernel::new()?;
    /// assert_eq!(kernel.run(async { 6 * 7 })?, 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Kernel> {
        Builder::new().build()
    }

    /// The settings builder.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline_kernel::Kernel;
    ///
    /// let mut kernel = Kernel::builder().shutdown_grace(Duration::from_millis(50)).build()?;
    /// kernel.run(async {})?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// What the kernel holds now, and what it has done so far.
    ///
    /// After [`Kernel::run`] returns, `tasks`, `parked`, `registrations`,
    /// `timers` and `timeouts` are all 0 unless something leaked.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Kernel;
    ///
    /// let mut kernel = Kernel::new()?;
    /// kernel.run(async {
    ///     for _ in 0..3 {
    ///         trapline_traps::spawn(Box::pin(async {})).unwrap();
    ///     }
    /// })?;
    /// let stats = kernel.stats();
    /// assert_eq!(stats.spawned, 4, "main and three children");
    /// assert_eq!((stats.tasks, stats.parked, stats.timers, stats.timeouts), (0, 0, 0, 0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        Stats::of(&self.shared.state.borrow())
    }

    /// A read-only window onto this kernel, for a monitor task to ask
    /// between polls.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Kernel;
    ///
    /// let mut kernel = Kernel::new()?;
    /// let probe = kernel.probe();
    /// let spawned = kernel.run(async move {
    ///     trapline_traps::spawn(Box::pin(async {})).unwrap();
    ///     probe.stats().map(|s| s.spawned)
    /// })?;
    /// assert_eq!(spawned, Some(2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn probe(&self) -> Probe {
        Probe {
            shared: Rc::downgrade(&self.shared),
        }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        waker::unregister(self.id);
        // Recipes still queued never run: dropping them tells their joins.
        self.injector.close();
    }
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("id", &self.id)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A kernel's counts: what it holds now, and what it has done since it was made.
///
/// # Examples
///
/// ```
/// use trapline_kernel::Kernel;
///
/// let mut kernel = Kernel::new()?;
/// kernel.run(async {})?;
/// let stats = kernel.stats();
/// assert_eq!((stats.tasks, stats.registrations, stats.timers), (0, 0, 0));
/// assert_eq!(stats.spawned, 1, "the main future runs as a task");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Tasks alive (the main future counts as one while it runs).
    pub tasks: usize,
    /// Tasks in the ready queue.
    pub ready: usize,
    /// Parks held by all tasks.
    pub parked: usize,
    /// Fds registered with the poller.
    pub registrations: usize,
    /// Timer entries that will still fire (sleeps and armed timeouts).
    pub timers: usize,
    /// Timeouts set and not yet unset.
    pub timeouts: usize,
    /// Wait queues with at least one task in them.
    pub wait_queues: usize,
    /// Passes of the loop so far.
    pub passes: u64,
    /// Of those passes, the ones that polled without blocking only to wait
    /// out the last stretch before a deadline (the timer's spin, see
    /// `timerfd`), not because anything was ready.
    pub timer_spins: u64,
    /// Task polls so far.
    pub polls: u64,
    /// I/O events handled so far.
    pub events: u64,
    /// Wakes through task wakers so far.
    pub wakeups: u64,
    /// Tasks started so far, the main one included.
    pub spawned: u64,
    /// Fd registrations and timeouts the kernel had to release itself when
    /// its last run ended, because what held them outlived the run (a socket
    /// or a `timeout_after` returned from it, or leaked). 0 when everything
    /// was dropped inside the run.
    pub released_at_exit: usize,
}

impl Stats {
    pub(crate) fn of(st: &State) -> Stats {
        Stats {
            tasks: st.tasks.len(),
            ready: st.ready.len(),
            parked: st.tasks.iter().map(|(_, t)| t.parks.len()).sum(),
            registrations: st.io.registered(),
            timers: st.timers.live(),
            timeouts: st.timeouts.len(),
            wait_queues: st.queues.len(),
            passes: st.counters.passes,
            timer_spins: st.counters.timer_spins,
            polls: st.counters.polls,
            events: st.counters.events,
            wakeups: st.counters.wakeups,
            spawned: st.counters.spawned,
            released_at_exit: st.counters.released_at_exit,
        }
    }
}
