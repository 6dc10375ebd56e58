//! Shielding: waiting anyway, to clean up after an interrupt.
//!
//! Interrupts are level-triggered: once a task is cancelled, every leaf of it
//! that would wait fails with `Cancelled`, and once a `timeout_after` limit
//! has passed, every leaf inside it that would wait fails with `TimedOut`.
//! That is what makes a cancel or a limit reach every branch of a `join!`.
//! Cleanup that must wait — flush a buffer, say goodbye to a peer — runs
//! inside [`shield`], where cancellation and the limits already in force are
//! held back (Curio calls this `disable_cancellation`). What was held back
//! reaches the first leaf that would wait after the shield.

use std::future::{poll_fn, Future};
use std::pin::pin;

/// Runs `future` with cancellation, and the timeouts in force around it,
/// held back. Timeouts set inside `future` still apply.
///
/// # Examples
///
/// A cancelled task still says goodbye on its stream before it ends:
///
/// ```
/// use trapline::net::{TcpListener, TcpStream};
/// use trapline::{shield, spawn, TrapError};
///
/// trapline::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, _) = listener.accept().await?;
///     let worker = spawn(async move {
///         let mut buf = [0; 8];
///         let err = server.read(&mut buf).await.unwrap_err();
///         assert!(TrapError::is_cancellation(&err));
///         // Any other wait would fail with `Cancelled` now; shielded, it runs.
///         shield(server.write_all(b"bye")).await
///     })?;
///     trapline::yield_now().await?; // let the worker park at its read
///     worker.cancel().await??;
///     let mut buf = [0; 3];
///     client.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"bye");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn shield<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        let _shield = trapline_traps::enter_shield();
        future.as_mut().poll(cx)
    })
    .await
}

/// Asks, without waiting, whether the running task has been told to stop:
/// `Err(Cancelled)` if it was cancelled, `Err(TimedOut(id))` if a
/// `timeout_after` limit around it has passed, `Ok(())` otherwise.
///
/// It sees through a [`shield`]: long cleanup inside one can check now and
/// then whether to cut it short (Curio's `check_cancellation`). Outside a
/// shield a wait would report the same error; this reports it without one,
/// so a loop that never waits can still be stopped.
///
/// # Examples
///
/// A shielded loop that never waits, stopped by a cancel:
///
/// ```
/// use trapline::{check_cancellation, shield, spawn, yield_now, TrapError};
///
/// trapline::run(async {
///     let worker = spawn(shield(async {
///         let mut rounds = 0u64;
///         loop {
///             if let Err(e) = check_cancellation() {
///                 return (rounds > 0, e);
///             }
///             rounds += 1;
///             let _ = yield_now().await; // shielded: the cancel is held back here
///         }
///     }))?;
///     yield_now().await?;
///     assert_eq!(worker.cancel().await?, (true, TrapError::Cancelled));
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_cancellation() -> Result<(), trapline_traps::TrapError> {
    match trapline_traps::pending_interrupt() {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
