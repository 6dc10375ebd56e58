//! `run_in_thread`: blocking work on a bounded pool of OS threads.
//!
//! A kernel runs every task on one thread, so a blocking call (a slow
//! `std::fs` read, a DNS lookup, a long computation) inside a task stalls all
//! of them. `run_in_thread(f)` sends `f` to a pool of worker threads and
//! awaits its result: the task traps with `FutureWait` and the worker wakes
//! it through its `Waker`, which reaches the kernel from another thread
//! through the kernel's remote wake queue.
//!
//! The pool is bounded: at most [`THREAD_POOL_SIZE`] workers, started on
//! demand and retired after a while idle; jobs beyond that wait their turn in
//! FIFO order. Nothing here ever blocks the kernel's thread.
//!
//! Discussion: an OS thread cannot be interrupted. Cancelling (or timing out)
//! the await *abandons* the job: the task goes on at once with the error; a
//! job that has not started yet never runs; a job already running runs to
//! its end on its worker, and its result is dropped there.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use trapline_traps::{Leaf, Trap};

use crate::task::{panic_message, JoinError};

/// The most worker threads the pool runs at once.
///
/// # Examples
///
/// ```
/// // Blocking work beyond this many jobs waits its turn; it never blocks a kernel.
/// assert_eq!(trapline::THREAD_POOL_SIZE, 16);
/// ```
pub const THREAD_POOL_SIZE: usize = 16;

/// How long an idle worker waits for a job before it exits.
const IDLE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Jobs {
    queue: VecDeque<Job>,
    workers: usize,
    idle: usize,
}

#[derive(Default)]
struct Pool {
    jobs: Mutex<Jobs>,
    ready: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

impl Pool {
    fn submit(&'static self, job: Job) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.queue.push_back(job);
        // Idle workers take queued jobs one each (an idle worker woken but
        // not yet running still counts as idle, and its job as queued): a new
        // worker is needed only for the jobs beyond them.
        if jobs.queue.len() <= jobs.idle || jobs.workers >= THREAD_POOL_SIZE {
            drop(jobs);
            self.ready.notify_one();
            return;
        }
        jobs.workers += 1;
        drop(jobs);
        let started = std::thread::Builder::new()
            .name("trapline-worker".into())
            .spawn(move || self.work());
        if let Err(e) = started {
            log::warn!("run_in_thread: could not start a worker: {e}");
            let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            jobs.workers -= 1;
            // With a worker running, the job waits for it. With none, no job
            // would ever run: drop them, and each awaiting task learns it
            // (`JoinError::Dropped`) instead of waiting forever.
            let stranded: Vec<Job> = match jobs.workers {
                0 => jobs.queue.drain(..).collect(),
                _ => Vec::new(),
            };
            drop(jobs);
            drop(stranded);
        }
    }

    fn work(&self) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(job) = jobs.queue.pop_front() {
                drop(jobs);
                // The job catches its closure's panic; this catches one from
                // dropping an abandoned result, so the worker lives on.
                let _ = catch_unwind(AssertUnwindSafe(job));
                jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            jobs.idle += 1;
            let (back, timeout) = self
                .ready
                .wait_timeout(jobs, IDLE)
                .unwrap_or_else(PoisonError::into_inner);
            jobs = back;
            jobs.idle -= 1;
            if timeout.timed_out() && jobs.queue.is_empty() {
                jobs.workers -= 1;
                return;
            }
        }
    }
}

/// What the job and its awaiting task share.
struct Slot<R> {
    result: Option<Result<R, JoinError>>,
    waker: Option<Waker>,
    abandoned: bool,
}

/// Runs `f` on the worker pool and awaits what it returns.
///
/// Resolves to `Ok(value)`, `Err(JoinError::Panicked)` if `f` panicked,
/// `Err(JoinError::Interrupted)` if the awaiting task was cancelled or timed
/// out, in which case the job is abandoned (see the module's Discussion), or
/// `Err(JoinError::Dropped)` if the OS would not start a single worker.
/// The job is submitted when the future is first polled.
///
/// # Examples
///
/// ```
/// trapline::run(async {
///     let sum = trapline::run_in_thread(|| (1..=100u64).sum::<u64>()).await?;
///     assert_eq!(sum, 5050);
///     Ok::<(), trapline::JoinError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn run_in_thread<F, R>(f: F) -> RunInThread<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    run_in_thread_at(f, Location::caller())
}

/// [`run_in_thread`] whose wait reports `location`: for library code that
/// carries its own caller's line down (name lookups).
pub(crate) fn run_in_thread_at<F, R>(f: F, location: &'static Location<'static>) -> RunInThread<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
        abandoned: false,
    }));
    let reply = Reply {
        slot: slot.clone(),
        sent: false,
    };
    let job: Job = Box::new(move || {
        let mut reply = reply;
        if lock(&reply.slot).abandoned {
            reply.sent = true;
            return; // cancelled before it started: never runs
        }
        let result = catch_unwind(AssertUnwindSafe(f))
            .map_err(|panic| JoinError::Panicked(panic_message(panic)));
        reply.send(result);
    });
    RunInThread {
        slot,
        job: Some(job),
        leaf: Leaf::at(location),
    }
}

/// The job's side of the slot: hands the result over, or, if the job is
/// dropped without running, tells the awaiting task so.
struct Reply<R> {
    slot: Arc<Mutex<Slot<R>>>,
    sent: bool,
}

impl<R> Reply<R> {
    fn send(&mut self, result: Result<R, JoinError>) {
        self.sent = true;
        let mut s = lock(&self.slot);
        if s.abandoned {
            drop(s);
            drop(result); // nobody waits: dropped here, on the worker
            return;
        }
        s.result = Some(result);
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        if !self.sent {
            self.send(Err(JoinError::Dropped));
        }
    }
}

fn lock<R>(slot: &Mutex<Slot<R>>) -> std::sync::MutexGuard<'_, Slot<R>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The future of [`run_in_thread`].
///
/// # Examples
///
/// ```
/// use trapline::RunInThread;
///
/// trapline::run(async {
///     let job: RunInThread<&str> = trapline::run_in_thread(|| "done");
///     assert_eq!(job.await, Ok("done"));
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct RunInThread<R> {
    slot: Arc<Mutex<Slot<R>>>,
    job: Option<Job>,
    leaf: Leaf,
}

impl<R> fmt::Debug for RunInThread<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunInThread")
            .field("submitted", &self.job.is_none())
            .finish()
    }
}

impl<R> Unpin for RunInThread<R> {}

impl<R> Future for RunInThread<R> {
    type Output = Result<R, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        {
            let mut s = lock(&this.slot);
            if let Some(result) = s.result.take() {
                drop(s);
                this.leaf.done();
                return Poll::Ready(result);
            }
            s.waker = Some(cx.waker().clone());
        }
        if let Err(e) = this.leaf.trap(cx, Trap::FutureWait) {
            lock(&this.slot).abandoned = true;
            this.job = None;
            return Poll::Ready(Err(JoinError::Interrupted(e)));
        }
        if let Some(job) = this.job.take() {
            pool().submit(job);
        }
        Poll::Pending
    }
}

impl<R> Drop for RunInThread<R> {
    fn drop(&mut self) {
        let mut s = lock(&self.slot);
        s.abandoned = true;
        s.waker = None;
    }
}
