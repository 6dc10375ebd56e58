//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use trapline::net::{TcpListener, TcpStream};
use trapline::{Kernel, Stats};

/// Runs `future` on a fresh kernel (shutdown grace `grace`) and returns its
/// output with the kernel's stats after the run.
#[track_caller]
pub fn run_with_grace<F: Future>(grace: Duration, future: F) -> (F::Output, Stats) {
    let mut kernel = Kernel::builder()
        .shutdown_grace(grace)
        .build()
        .expect("a kernel");
    let out = kernel.run(future).expect("the kernel ran");
    (out, kernel.stats())
}

/// Runs `future` on a fresh kernel and returns its output with the stats.
#[track_caller]
pub fn run_with_stats<F: Future>(future: F) -> (F::Output, Stats) {
    run_with_grace(Duration::from_secs(1), future)
}

/// Runs `future` on a fresh kernel, asserts the kernel is empty afterwards
/// (no task, park, registration, timer or timeout left) and returns the output.
#[track_caller]
pub fn run_clean<F: Future>(future: F) -> F::Output {
    let (out, stats) = run_with_stats(future);
    assert_clean(&stats);
    out
}

/// Asserts that a kernel holds nothing any more.
#[track_caller]
pub fn assert_clean(stats: &Stats) {
    assert_eq!(
        (
            stats.tasks,
            stats.parked,
            stats.registrations + stats.released_at_exit,
            stats.timers,
            stats.timeouts,
            stats.wait_queues
        ),
        (0, 0, 0, 0, 0, 0),
        "kernel not empty after run: {stats:?}"
    );
}

/// A connected loopback pair (client, server side), made inside a kernel.
pub async fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    let addr = listener.local_addr()?;
    let client = TcpStream::connect(addr);
    let accepted = listener.accept();
    let (client, accepted) = futures::join!(client, accepted);
    Ok((client?, accepted?.0))
}

/// A deterministic pseudo-random byte generator (xorshift64*), for payloads.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A shared, ordered record of what happened, for asserting exact order.
pub type Log = Rc<RefCell<Vec<String>>>;

/// An empty log.
pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// Appends `entry` to `log`.
pub fn push(log: &Log, entry: impl Into<String>) {
    log.borrow_mut().push(entry.into());
}

/// What `log` holds, in order.
pub fn entries(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

/// Counts every poll of the future it wraps.
pub struct Counted<F> {
    polls: Rc<Cell<u64>>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Counted<F> {
    pub fn new(polls: Rc<Cell<u64>>, inner: F) -> Counted<F> {
        Counted {
            polls,
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.inner.as_mut().poll(cx)
    }
}

/// Runs `future` on a fresh kernel with a virtual clock (time moves only
/// when every task waits, jumping to the next deadline) and a shutdown grace
/// of `grace` virtual time; returns its output with the stats.
#[track_caller]
pub fn run_virtual_with_grace<F: Future>(grace: Duration, future: F) -> (F::Output, Stats) {
    let mut kernel = Kernel::builder()
        .virtual_clock()
        .shutdown_grace(grace)
        .build()
        .expect("a kernel");
    let out = kernel.run(future).expect("the kernel ran");
    (out, kernel.stats())
}

/// [`run_virtual_with_grace`] with a grace of one (virtual) second.
#[track_caller]
pub fn run_virtual<F: Future>(future: F) -> (F::Output, Stats) {
    run_virtual_with_grace(Duration::from_secs(1), future)
}

/// [`run_virtual`], asserting the kernel is empty afterwards.
#[track_caller]
pub fn run_virtual_clean<F: Future>(future: F) -> F::Output {
    let (out, stats) = run_virtual(future);
    assert_clean(&stats);
    out
}

/// The kernel's clock now, as a duration since `t0` (for exact assertions
/// on a virtual clock).
pub fn since(t0: std::time::Instant) -> Duration {
    trapline::clock().expect("inside a kernel") - t0
}

/// Serializes the tests of one file that must not overlap (they count
/// this process's fds, or take fd numbers): hold the guard for the test.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// This process's fds and their limit.
pub mod fds;

/// Capturing the trace (`trapline::trap` lines) of one thread.
pub mod trace;

/// Asking the monitor over TCP.
pub mod monitor;

/// How long [`within_limit`] lets a read wait before it calls it lost.
pub const WAKE_LIMIT: Duration = Duration::from_secs(5);

/// `read`'s output, or `TimedOut` if it is still waiting after
/// [`WAKE_LIMIT`]: a lost wake-up fails the test instead of hanging it. (A
/// `timeout_after` would not do: a read it interrupts that finds bytes
/// completes normally, which would hide the lost wake-up.) The limit is
/// polled first: when it fires, the read (which a wake of the task would
/// poll too, and which would then find its bytes) loses.
pub async fn within_limit<T>(read: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    let read = std::pin::pin!(read);
    let limit = std::pin::pin!(trapline::sleep(WAKE_LIMIT));
    match futures::future::select(limit, read).await {
        futures::future::Either::Left(_) => Err(io::ErrorKind::TimedOut.into()),
        futures::future::Either::Right((done, _)) => done,
    }
}

/// Spawns a task that makes one read of up to 16 bytes from `stream` and
/// ends with the bytes it got.
pub fn read_once(
    stream: &Rc<TcpStream>,
) -> Result<trapline::JoinHandle<io::Result<Vec<u8>>>, trapline::TrapError> {
    let stream = stream.clone();
    trapline::spawn(async move {
        let mut buf = [0u8; 16];
        let n = stream.read(&mut buf).await?;
        Ok(buf[..n].to_vec())
    })
}

/// Runs `f` on a thread of its own and returns what it returns, or fails
/// the test after `limit` (the thread is left behind): for a test whose
/// failure would be a hang no timer inside a kernel can catch, such as the
/// timers themselves no longer firing.
pub fn on_a_thread_within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    ended
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("not done within {limit:?}"))
}
