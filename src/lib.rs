//! # trapline: a trap-based async kernel
//!
//! trapline runs `async` Rust the way Curio runs Python coroutines. The
//! futures at the end of every chain of awaits — reading a socket, sleeping,
//! joining a task — do not register wakers with a reactor. They **trap**: a
//! leaf that cannot go on leaves a request such as `ReadWait(fd 7)` or
//! `Sleep(deadline)` in the trap slot and returns `Pending`. The `Pending`
//! climbs the chain to the kernel loop, which parks the task in its slab under
//! that condition and, when mio or the clock says it holds, polls the task
//! again: the whole suspended chain resumes, and the leaf looks again.
//! Cancellation and timeouts arrive at the trap, as errors, and stay in
//! force, so every branch of a task stops; a task cleans up inside
//! [`shield`].
//!
//! ```no_run
//! use trapline::net::TcpListener;
//!
//! fn main() -> std::io::Result<()> {
//!     trapline::run(async {
//!         let listener = TcpListener::bind("127.0.0.1:7000".parse().unwrap())?;
//!         loop {
//!             let (stream, _) = listener.accept().await?;
//!             trapline::spawn(async move {
//!                 let mut buf = [0; 4096];
//!                 while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!                     stream.write_all(&buf[..n]).await?;
//!                 }
//!                 Ok::<(), std::io::Error>(())
//!             })?;
//!         }
//!     })?
//! }
//! ```
//!
//! `RUST_LOG=trapline=trace` (with a logger such as env_logger) prints every
//! trap and every resume. `docs/how-it-works.md` follows one echo round trip
//! through the leaf, the trap, the park, mio's event and the resume.
//!
//! # Layout
//!
//! - [`run`], [`Kernel`], [`Builder`]: start a kernel (the `trapline-kernel` crate).
//! - [`task`]: [`spawn`], [`JoinHandle`], [`current`], [`yield_now`], and
//!   [`task::Builder`] to name a task.
//! - `time`: [`clock`], [`sleep`], [`sleep_until`], [`timeout_after`], [`ignore_after`].
//! - `shield`: [`shield`], to wait for cleanup after a cancel or a timeout,
//!   and [`check_cancellation`], to ask without waiting.
//! - `group`: [`TaskGroup`], structured concurrency: policies, completions in
//!   order, daemons, and the cancel cascade.
//! - [`sync`]: [`sync::Event`], [`sync::Lock`], [`sync::Semaphore`],
//!   [`sync::Condition`], [`sync::Queue`], for tasks of one kernel.
//! - [`universal_queue`]: [`UniversalQueue`], between tasks, OS threads and
//!   other kernels.
//! - `blocking`: [`run_in_thread`], blocking work on a bounded pool of threads.
//! - [`signal`]: [`signal::Signals`], SIGINT/SIGTERM and others as awaitables.
//! - `threads`: [`run_threads`], one kernel per core; [`Handle`] reaches a
//!   kernel from another thread.
//! - [`net`]: TCP, UDP and Unix domain sockets, name resolution,
//!   `futures-io` traits.
//! - `hyper_rt` (feature `hyper`): hyper 1.x's runtime traits on trapline.
//! - [`echo`]: an echo service with a connection limit, an idle timeout and
//!   bounded buffers (the `echo_server` example runs it).
//! - [`monitor`]: look inside a running kernel with `nc` (`ps`, `where`,
//!   `cancel`, `stats`), built on the kernel's [`Hooks`].
//! - [`traps`]: the trap ABI (the `trapline-traps` crate), for writing leaves
//!   and loops of your own.
//!
//! This library is written with traps only: nothing in it touches the
//! kernel's insides, just as Curio's io.py is written with curio.traps.

#![forbid(unsafe_code)]
#![deny(missing_docs, rust_2018_idioms)]
#![warn(missing_debug_implementations, clippy::undocumented_unsafe_blocks)]

mod blocking;
pub mod echo;
mod group;
#[cfg(feature = "hyper")]
pub mod hyper_rt;
pub mod monitor;
pub mod net;
mod shield;
pub mod signal;
pub mod sync;
pub mod task;
mod threads;
mod time;
pub mod universal_queue;

use std::future::Future;

pub use blocking::{run_in_thread, RunInThread, THREAD_POOL_SIZE};
pub use group::{Finished, GroupError, Policy, TaskFailure, TaskGroup};
pub use shield::{check_cancellation, shield};
pub use task::{current, spawn, yield_now, Join, JoinError, JoinHandle, YieldNow};
pub use threads::{run_threads, run_threads_with, KernelThread};
pub use time::{clock, ignore_after, sleep, sleep_until, timeout_after, Sleep};
pub use trapline_kernel::{
    Builder, Ended, Handle, Hooks, Kernel, Parked, Probe, RemoteError, RemoteJoin, Spawned, Stats,
    TaskState,
};
pub use trapline_traps as traps;
pub use trapline_traps::{TaskId, TimeoutId, TrapError};
pub use universal_queue::UniversalQueue;

/// Runs `future` on a new kernel on this thread, with every task it spawns,
/// and returns its output.
///
/// When `future` ends, tasks still running are cancelled at their traps,
/// given a second to clean up, then dropped. Fails if a kernel already runs on
/// this thread (`run` inside `run`), or if the OS refuses an epoll instance.
///
/// With the environment variable `TRAPLINE_MONITOR` set (see
/// [`monitor::ENV_VAR`]), the kernel runs with a [`monitor::Monitor`]
/// listening; a value that is not understood, or not a loopback address, is
/// an error here. An address already taken (by the monitor of another kernel
/// of this program) is not: it is logged as a warning, and this kernel runs
/// without a monitor.
///
/// # Examples
///
/// ```
/// let out = trapline::run(async { "hello" })?;
/// assert_eq!(out, "hello");
///
/// let nested = trapline::run(async { trapline::run(async {}).is_err() })?;
/// assert!(nested, "a second kernel on the same thread is refused");
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn run<F: Future>(future: F) -> std::io::Result<F::Output> {
    match monitor::Monitor::from_env()? {
        None => Kernel::new()?.run(future),
        Some(monitor) => monitor.run_if_free(Builder::new(), future),
    }
}

/// The README's code, compiled and run as a doctest so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
