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
//! - **Accept errors never spin.** Running out of fds (`EMFILE`, `ENFILE`)
//!   or kernel memory leaves the pending connection in the backlog, so
//!   accepting again at once would fail again at once. The loop sleeps
//!   instead, 1 ms doubling up to a second, and starts over at 1 ms after
//!   the next success. A connection the peer dropped before it was accepted
//!   (`ECONNABORTED`) is just skipped.
//!
//! Written with the facade only (net, time, task), like any user code.
//! Each connection's task is named `conn PEER` for the monitor.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use log::{debug, warn};

use crate::net::{TcpListener, TcpStream};
use crate::{sleep, timeout_after, TrapError};

/// Limits of an echo service.
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
    pub max_connections: usize,
    /// A connection with no progress (nothing read, nothing written) for
    /// this long is closed.
    pub idle_timeout: Duration,
    /// Bytes of buffer per connection.
    pub buffer: usize,
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
    /// Connections ended by an error (a reset, a broken pipe).
    failed: u64,
    /// Failed accepts (each one followed by a back-off, or a skip).
    accept_errors: u64,
    /// Bytes echoed.
    bytes: u64,
}

fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

/// The shortest and longest back-off after a failed accept.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(1));

/// Serves echo on `listener` until the task is cancelled.
///
/// One task per connection; everything read is written back. Returns only
/// with the error that ended it (`Cancelled`, as an `io::Error`, when the
/// task is cancelled).
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
    let mut backoff = BACKOFF.0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = BACKOFF.0;
                accepted
            }
            Err(e) if TrapError::is_cancellation(&e) => return Err(e),
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {
                // The peer gave up between its SYN and our accept.
                bump(&stats.accept_errors);
                continue;
            }
            Err(e) => {
                // Out of fds or memory: the connection stays in the backlog
                // and accepting again now would fail again now.
                bump(&stats.accept_errors);
                warn!(target: "trapline::echo", "accept failed: {e}; retrying in {backoff:?}");
                sleep(backoff).await?;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        if stats.active.get() >= config.max_connections {
            bump(&stats.refused);
            debug!(target: "trapline::echo", "{peer}: over the limit, closed");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        bump(&stats.accepted);
        stats.active.set(stats.active.get() + 1);
        stats.peak.set(stats.peak.get().max(stats.active.get()));
        let stats = stats.clone();
        // Named, so the monitor's `ps` shows whose connection a task serves.
        crate::task::Builder::new()
            .name(format!("conn {peer}"))
            .spawn(async move {
                let ended = echo(&stream, &config, &stats).await;
                match ended {
                    Ok(()) => debug!(target: "trapline::echo", "{peer}: closed"),
                    Err(Ended::Idle) => {
                        bump(&stats.idle_closed);
                        debug!(target: "trapline::echo", "{peer}: idle, closed");
                    }
                    Err(Ended::Failed(e)) => {
                        bump(&stats.failed);
                        debug!(target: "trapline::echo", "{peer}: {e}");
                    }
                }
                stats.active.set(stats.active.get() - 1);
            })?;
    }
}

enum Ended {
    Idle,
    Failed(io::Error),
}

/// Echoes until the peer closes its side; then closes ours.
async fn echo(stream: &TcpStream, config: &EchoConfig, stats: &EchoStats) -> Result<(), Ended> {
    let mut buf = vec![0; config.buffer.max(1)];
    let within = |r: Result<io::Result<()>, TrapError>| match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Ended::Failed(e)),
        Err(TrapError::TimedOut(_)) => Err(Ended::Idle),
        Err(e) => Err(Ended::Failed(e.into())),
    };
    loop {
        let mut n = 0;
        within(
            timeout_after(config.idle_timeout, async {
                n = stream.read(&mut buf).await?;
                Ok(())
            })
            .await,
        )?;
        if n == 0 {
            return Ok(());
        }
        // Progress resets the idle clock: each write gets the full timeout.
        let mut written = 0;
        while written < n {
            within(
                timeout_after(config.idle_timeout, async {
                    written += stream.write(&buf[written..n]).await?;
                    Ok(())
                })
                .await,
            )?;
        }
        stats.bytes.set(stats.bytes.get() + n as u64);
    }
}
