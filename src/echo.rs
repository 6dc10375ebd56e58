//! An echo service with the limits a service needs: a connection limit, an
//! idle timeout, bounded buffers, and an accept loop that backs off when the
//! process runs out of fds. The `echo_server` example and the fault tests
//! both run it.
//!
//! Principles:
//!
//! - **Memory is bounded by construction.** Each connection owns one buffer
//!   of [`EchoConfig::buffer`] bytes and reads again only once what it read
//!   has been written back, so a peer that never reads stalls only its own
//!   connection: at most `max_connections × buffer` bytes in all.
//! - **No progress for the idle timeout closes a connection**, whether the
//!   peer never sends or never reads.
//! - **Over the limit, a connection is accepted and closed at once**: the
//!   client learns at once (it reads end-of-file) instead of waiting in the
//!   listen backlog.
//! - **Accept errors never spin, and never hide.** Running out of fds
//!   (`EMFILE`, `ENFILE`) or kernel memory (`ENOBUFS`, `ENOMEM`) leaves the
//!   pending connection in the backlog, so accepting again at once would
//!   fail again at once. The loop sleeps instead, 1 ms doubling up to a
//!   second, and starts over at 1 ms after the next success. A connection
//!   that failed before it was accepted (`ECONNABORTED`, `EPROTO`, a network
//!   error) is just skipped. Any other error — a bad listener (`EBADF`,
//!   `EINVAL`, `ENOTSOCK`), a cancel, a timeout around the service — ends
//!   the service with that error.
//! - **The service owns its connections.** When it ends, for whatever
//!   reason, it cancels every connection task and waits for each to end, so
//!   no fd, timer or task outlives it. The count of active connections is a
//!   guard moved into each connection's task: it goes down however the task
//!   ends (returns, panics, is dropped, or was never spawned).
//! - **A graceful stop is the caller's choice.** [`serve_until`] stops
//!   accepting when a future of the caller's resolves and hands back the
//!   connections still [`Open`], to let them finish or to cancel them.
//!
//! Discussion: the idle timeout costs one timer per connection per idle
//! period, not two per message. A connection arms one limit, notes the
//! kernel's clock at each step of progress, and when the limit passes
//! checks: with progress since it was armed, it arms again for the rest of
//! the period counted from the last progress (the read or write it
//! interrupted had done nothing, so nothing is lost); without, the
//! connection is idle. On a busy connection the limit is armed once per
//! `idle_timeout`, and the per-message cost is one clock read (see
//! `noting_before_waiting`).
//!
//! Written with the facade only (net, time, task), like any user code.
//! Each connection's task is named `conn PEER` for the monitor.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use log::{debug, warn};

mod connections;

pub use connections::Open;

use connections::{Active, Connections, Registered};

use crate::net::{TcpListener, TcpStream};
use crate::{clock, sleep, timeout_after, TrapError};

/// Limits of an echo service.
///
/// Every limit must be above zero: [`serve`] refuses a zero with an
/// `InvalidInput` error (no connections at all, a timeout that closes every
/// connection at once, a buffer that cannot hold a byte are all mistakes).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use trapline::echo::EchoConfig;
///
/// let config = EchoConfig { max_connections: 100, ..EchoConfig::default() };
/// assert_eq!(config.idle_timeout, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoConfig {
    /// Connections served at once; more are accepted and closed at once.
    /// At least 1.
    pub max_connections: usize,
    /// A connection with no progress (nothing read, nothing written) for
    /// this long is closed. Above zero.
    pub idle_timeout: Duration,
    /// Bytes of buffer per connection. At least 1.
    pub buffer: usize,
}

impl EchoConfig {
    /// Checks that every limit is above zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::echo::EchoConfig;
    ///
    /// assert!(EchoConfig::default().check().is_ok());
    /// let none = EchoConfig { max_connections: 0, ..EchoConfig::default() };
    /// assert_eq!(
    ///     none.check().unwrap_err().to_string(),
    ///     "echo: max_connections must be at least 1"
    /// );
    /// ```
    pub fn check(&self) -> io::Result<()> {
        let zero = if self.max_connections == 0 {
            "max_connections must be at least 1"
        } else if self.idle_timeout.is_zero() {
            "idle_timeout must be above zero"
        } else if self.buffer == 0 {
            "buffer must be at least 1 byte"
        } else {
            return Ok(());
        };
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("echo: {zero}"),
        ))
    }
}

impl Default for EchoConfig {
    /// 10,000 connections, a 60 s idle timeout, 16 KiB per connection.
    fn default() -> EchoConfig {
        EchoConfig {
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
            buffer: 16 * 1024,
        }
    }
}

/// What an echo service has done so far.
///
/// # Examples
///
/// ```
/// use trapline::echo::EchoStats;
///
/// let stats = EchoStats::default();
/// assert_eq!(stats.active(), 0);
/// ```
#[derive(Debug, Default)]
pub struct EchoStats {
    accepted: Cell<u64>,
    refused: Cell<u64>,
    active: Cell<usize>,
    peak: Cell<usize>,
    idle_closed: Cell<u64>,
    failed: Cell<u64>,
    accept_errors: Cell<u64>,
    bytes: Cell<u64>,
}

macro_rules! getters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl EchoStats {
            $(
                $(#[$doc])*
                ///
                /// # Examples
                ///
                /// ```
                /// let stats = trapline::echo::EchoStats::default();
                #[doc = concat!("assert_eq!(stats.", stringify!($name), "(), 0);")]
                /// ```
                pub fn $name(&self) -> $ty {
                    self.$name.get()
                }
            )*
        }
    };
}

getters! {
    /// Connections accepted and served.
    accepted: u64,
    /// Connections accepted over the limit and closed at once.
    refused: u64,
    /// Connections being served now.
    active: usize,
    /// The most connections served at once.
    peak: usize,
    /// Connections closed by the idle timeout.
    idle_closed: u64,
    /// Connections ended by an error (a reset, a broken pipe); not those
    /// cancelled when the service ended.
    failed: u64,
    /// Failed accepts that the service survived (each one followed by a
    /// back-off, or a skip).
    accept_errors: u64,
    /// Bytes echoed.
    bytes: u64,
}

fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

/// The shortest and longest back-off after a failed accept.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(1));

/// Serves echo on `listener` until the task is cancelled, a limit around it
/// passes, or the listener fails for good.
///
/// One task per connection; everything read is written back. Never returns
/// `Ok`: it returns the error that ended it — `Cancelled` or `TimedOut` (as
/// an `io::Error`, see [`TrapError::from_io`]) when interrupted, the accept
/// error when the listener is unusable (`EBADF`, `EINVAL`, ...), or
/// `InvalidInput` at once when a limit of `config` is zero. Before it
/// returns, every connection task it started has been cancelled and has
/// ended.
///
/// # Examples
///
/// ```no_run
/// use std::rc::Rc;
/// use trapline::echo::{serve, EchoConfig, EchoStats};
/// use trapline::net::TcpListener;
///
/// trapline::run(async {
///     let listener = TcpListener::bind("127.0.0.1:7000".parse().unwrap())?;
///     serve(listener, EchoConfig::default(), Rc::new(EchoStats::default())).await
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn serve(
    listener: TcpListener,
    config: EchoConfig,
    stats: Rc<EchoStats>,
) -> io::Result<()> {
    config.check()?;
    let connections = Connections::default();
    let ended = accept_loop(&listener, &config, &stats, &connections).await;
    drop(listener);
    connections.end().await;
    Err(ended)
}

/// Serves echo on `listener` like [`serve`] until `stop` resolves; then
/// stops accepting (the listener is closed) and returns `stop`'s output
/// with the connections still [`Open`], for the caller to let finish or
/// cancel.
///
/// Ends early, like [`serve`], with the error that ended the service (its
/// connections cancelled and ended first).
///
/// # Examples
///
/// See [`Open`].
pub async fn serve_until<S: Future>(
    listener: TcpListener,
    config: EchoConfig,
    stats: Rc<EchoStats>,
    stop: S,
) -> io::Result<(S::Output, Open)> {
    config.check()?;
    let connections = Connections::default();
    let stopped = {
        let mut stop = pin!(stop);
        let mut accepting = pin!(accept_loop(&listener, &config, &stats, &connections));
        poll_fn(|cx| {
            if let Poll::Ready(out) = stop.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            accepting.as_mut().poll(cx).map(Err)
        })
        .await
    };
    drop(listener);
    match stopped {
        Ok(out) => Ok((out, Open { connections })),
        Err(e) => {
            connections.end().await;
            Err(e)
        }
    }
}

/// What to do after a failed accept.
#[derive(Debug, PartialEq, Eq)]
enum AfterError {
    /// Out of a resource: wait before trying again.
    BackOff,
    /// One connection failed: go on with the next.
    Skip,
    /// The service cannot go on: return the error.
    End,
}

fn after_error(e: &io::Error) -> AfterError {
    if TrapError::from_io(e).is_some() {
        return AfterError::End; // cancelled, timed out, no kernel
    }
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AfterError::BackOff,
        // Errors of the connection being accepted, not of the listener
        // (accept(2) lists the network ones as ones to retry).
        Some(
            libc::ECONNABORTED
            | libc::EPROTO
            | libc::EPERM
            | libc::EINTR
            | libc::EAGAIN
            | libc::ENETDOWN
            | libc::ENETUNREACH
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::ENONET
            | libc::EOPNOTSUPP
            | libc::ETIMEDOUT,
        ) => AfterError::Skip,
        _ => AfterError::End,
    }
}

/// Accepts and spawns a task per connection; returns the error that ended it.
async fn accept_loop(
    listener: &TcpListener,
    config: &EchoConfig,
    stats: &Rc<EchoStats>,
    connections: &Connections,
) -> io::Error {
    let mut backoff = BACKOFF.0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = BACKOFF.0;
                accepted
            }
            Err(e) => match after_error(&e) {
                AfterError::End => {
                    if TrapError::from_io(&e).is_none() {
                        warn!(target: "trapline::echo", "accept failed: {e}; the service ends");
                    }
                    return e;
                }
                AfterError::Skip => {
                    bump(&stats.accept_errors);
                    debug!(target: "trapline::echo", "accept failed: {e}; skipped");
                    continue;
                }
                AfterError::BackOff => {
                    bump(&stats.accept_errors);
                    warn!(target: "trapline::echo", "accept failed: {e}; retrying in {backoff:?}");
                    if let Err(e) = sleep(backoff).await {
                        return e.into();
                    }
                    backoff = (backoff * 2).min(BACKOFF.1);
                    continue;
                }
            },
        };
        if stats.active.get() >= config.max_connections {
            bump(&stats.refused);
            debug!(target: "trapline::echo", "{peer}: over the limit, closed");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        bump(&stats.accepted);
        // Counted from here; the guard goes into the task and uncounts the
        // connection however the task ends, or if it is never spawned.
        let active = Active::new(stats.clone());
        let key = connections.next_key();
        let registered = Registered {
            connections: connections.tasks.clone(),
            key,
        };
        let config = *config;
        // Named, so the monitor's `ps` shows whose connection a task serves.
        let spawned = crate::task::Builder::new()
            .name(format!("conn {peer}"))
            .spawn(async move {
                let _registered = registered;
                let stats = &active.0;
                match echo(&stream, &config, stats).await {
                    Ok(()) => debug!(target: "trapline::echo", "{peer}: closed"),
                    Err(Ended::Idle) => {
                        bump(&stats.idle_closed);
                        debug!(target: "trapline::echo", "{peer}: idle, closed");
                    }
                    Err(Ended::Failed(e)) if TrapError::from_io(&e).is_some() => {
                        debug!(target: "trapline::echo", "{peer}: {e}");
                    }
                    Err(Ended::Failed(e)) => {
                        bump(&stats.failed);
                        debug!(target: "trapline::echo", "{peer}: {e}");
                    }
                }
                drop(active);
            });
        match spawned {
            Ok(task) => connections.insert(key, task),
            Err(e) => return e.into(),
        }
    }
}

enum Ended {
    Idle,
    Failed(io::Error),
}

/// Runs `step` (a write); if it has to wait or fails, first notes the clock
/// in `progress`.
///
/// Discussion: the clock is read once per echoed message, after its write.
/// The read before it made progress too, and that progress must be on
/// record if the write then waits (a slow reader) and the idle limit passes
/// meanwhile: so a write that parks notes the clock first, in the same poll
/// as the read that completed just before it; so does a write that fails
/// (the limit may have passed just as it trapped: the read's progress then
/// re-arms it). A write that completes at once, the usual case, reads the
/// clock only after it.
async fn noting_before_waiting(
    step: impl Future<Output = io::Result<usize>>,
    progress: &mut Instant,
) -> io::Result<usize> {
    let mut step = pin!(step);
    let mut noted = false;
    poll_fn(|cx| {
        let polled = step.as_mut().poll(cx);
        // Waiting, or failing (a limit that passed as it trapped): either
        // way the progress before it must be on record.
        if !noted && !matches!(polled, Poll::Ready(Ok(_))) {
            noted = true;
            match clock() {
                Ok(now) => *progress = now,
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        polled
    })
    .await
}

/// Echoes until the peer closes its side; then closes ours.
async fn echo(stream: &TcpStream, config: &EchoConfig, stats: &EchoStats) -> Result<(), Ended> {
    let fail = |e: TrapError| Ended::Failed(e.into());
    let mut buf = vec![0; config.buffer.max(1)];
    // Bytes read and not yet written back: `buf[start..end]`.
    let (mut start, mut end) = (0, 0);
    let mut progress = clock().map_err(fail)?;
    loop {
        let armed = clock().map_err(fail)?;
        // Whether anything was read or written under this limit (the
        // clock may read the same in one pass, so it cannot tell).
        let mut moved = false;
        let left = match progress.checked_add(config.idle_timeout) {
            Some(deadline) => deadline.saturating_duration_since(armed),
            None => config.idle_timeout, // as good as never
        };
        if left.is_zero() {
            return Err(Ended::Idle);
        }
        let served = timeout_after(left, async {
            loop {
                if start == end {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    (start, end) = (0, n);
                    moved = true;
                    continue; // the write comes next, and notes the clock
                }
                let write = stream.write(&buf[start..end]);
                start += noting_before_waiting(write, &mut progress).await?;
                if start == end {
                    stats.bytes.set(stats.bytes.get() + end as u64);
                }
                progress = clock()?;
                moved = true;
            }
        })
        .await;
        match served {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => return Err(Ended::Failed(e)),
            // Progress since the limit was armed: arm it again for the
            // rest of the period (the step it cut short had done nothing).
            Err(TrapError::TimedOut(_)) if moved => continue,
            Err(TrapError::TimedOut(_)) => return Err(Ended::Idle),
            Err(e) => return Err(fail(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kernel;

    /// Runs `future` on a kernel with a virtual clock: sleeps end exactly.
    fn run_virtual<F: Future>(future: F) -> F::Output {
        let mut kernel = Kernel::builder().virtual_clock().build().expect("a kernel");
        kernel.run(future).expect("the kernel ran")
    }

    /// A write that waits notes the clock when it parks (the progress of
    /// the read before it), not when it ends.
    #[test]
    fn a_step_that_waits_notes_the_clock_as_it_parks() {
        let (wrote, noted, parked_at) = run_virtual(async {
            let t0 = clock().unwrap();
            sleep(Duration::from_secs(3)).await.unwrap();
            let parked_at = clock().unwrap() - t0;
            let mut progress = t0;
            let step = async {
                sleep(Duration::from_secs(2)).await?;
                Ok(7)
            };
            let wrote = noting_before_waiting(step, &mut progress).await.unwrap();
            (wrote, progress - t0, parked_at)
        });
        assert_eq!(wrote, 7);
        assert_eq!(parked_at, Duration::from_secs(3));
        assert_eq!(
            noted,
            Duration::from_secs(3),
            "noted at the park, not at the end (5 s)"
        );
    }

    /// A write that completes at once leaves the clock to its caller; one
    /// that fails at once notes it.
    #[test]
    fn a_step_notes_the_clock_only_if_it_waits_or_fails() {
        let (at_once, failed) = run_virtual(async {
            let t0 = clock().unwrap();
            sleep(Duration::from_secs(1)).await.unwrap();
            let mut progress = t0;
            let wrote = noting_before_waiting(async { Ok(4) }, &mut progress).await;
            let at_once = (wrote.unwrap(), progress - t0);
            let mut progress = t0;
            let refused = io::Error::from(io::ErrorKind::ConnectionReset);
            let wrote = noting_before_waiting(async { Err(refused) }, &mut progress).await;
            let failed = (wrote.unwrap_err().kind(), progress - t0);
            (at_once, failed)
        });
        assert_eq!(at_once, (4, Duration::ZERO));
        assert_eq!(
            failed,
            (io::ErrorKind::ConnectionReset, Duration::from_secs(1))
        );
    }
}
