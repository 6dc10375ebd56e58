//! Signals as something a task can await: SIGINT and SIGTERM for a graceful
//! shutdown, or any other catchable signal.
//!
//! A signal handler may do almost nothing, so it does one thing: it writes a
//! byte to a socket. [`Signals`] makes one Unix socket pair per signal, has
//! `signal-hook` write to the one end when the signal arrives (its safe
//! `low_level::pipe::register`; the facade itself stays free of `unsafe`),
//! and awaits the other end with `ReadWait` traps, like any socket. Waiting
//! for a signal is therefore cancellable and timeout-able like any read.
//!
//! Discussion: signals are process-wide. Every `Signals` watching a signal
//! sees each delivery of it (each has its own socket), and deliveries that
//! come faster than they are read may merge: a read drains all the bytes
//! waiting for that signal and reports it once. Once a `Signals` has
//! watched a signal, the process keeps catching it after the `Signals` is
//! dropped (signal-hook does not restore the default action), so a signal
//! watched and no longer awaited is ignored rather than fatal; watch
//! termination signals for the life of the program.

use std::fmt;
use std::future::Future;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use signal_hook::SigId;
use trapline_traps::{Leaf, Trap};

pub use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// One watched signal: its number, the socket its handler writes to, and
/// its registration.
struct Watch {
    signal: i32,
    reader: UnixStream,
    id: SigId,
}

/// A set of signals a task can wait for.
///
/// Not `Send`: its sockets are registered with the kernel of its thread.
///
/// # Examples
///
/// ```
/// use trapline::signal::{Signals, SIGUSR1};
///
/// trapline::run(async {
///     let signals = Signals::new(&[SIGUSR1])?;
///     signal_hook::low_level::raise(SIGUSR1)?; // the process signals itself
///     assert_eq!(signals.recv().await?, SIGUSR1);
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Signals {
    watches: Vec<Watch>,
    _kernel: PhantomData<*const ()>,
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signals: Vec<i32> = self.watches.iter().map(|w| w.signal).collect();
        f.debug_struct("Signals")
            .field("signals", &signals)
            .finish()
    }
}

impl Signals {
    /// Starts catching `signals`. Fails with `InvalidInput` for a signal that
    /// cannot be caught (`SIGKILL`, `SIGSTOP`, the fault signals), with the
    /// OS's error for a number out of range or a refused socket; nothing
    /// stays registered then.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::signal::{Signals, SIGINT, SIGTERM};
    ///
    /// let signals = Signals::new(&[SIGINT, SIGTERM])?;
    /// assert_eq!(signals.signals(), [SIGINT, SIGTERM]);
    /// assert!(Signals::new(&[9]).is_err(), "SIGKILL cannot be caught");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(signals: &[i32]) -> io::Result<Signals> {
        let mut watched = Signals {
            watches: Vec::new(),
            _kernel: PhantomData,
        };
        for &signal in signals {
            // signal-hook panics on these; say no plainly instead.
            if signal_hook::consts::FORBIDDEN.contains(&signal) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("signal {signal} cannot be caught (SIGKILL, SIGSTOP, or a fault)"),
                ));
            }
            let (reader, writer) = UnixStream::pair()?;
            reader.set_nonblocking(true)?;
            writer.set_nonblocking(true)?; // a full socket drops a byte, never blocks a handler
            let id = signal_hook::low_level::pipe::register(signal, writer)?;
            watched.watches.push(Watch { signal, reader, id });
        }
        Ok(watched)
    }

    /// The signals watched, in the order given.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::signal::{Signals, SIGUSR2};
    ///
    /// assert_eq!(Signals::new(&[SIGUSR2])?.signals(), [SIGUSR2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn signals(&self) -> Vec<i32> {
        self.watches.iter().map(|w| w.signal).collect()
    }

    /// Waits for one of the signals and returns its number; the first one
    /// given wins if several are pending.
    ///
    /// `ReadWait` traps, one per signal: cancellable and timeout-able. An
    /// empty set waits until interrupted. One task waits on a `Signals` at a
    /// time (one reader per socket): a second one waiting at once gets
    /// `ResourceBusy`; give each task a `Signals` of its own instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::signal::{Signals, SIGUSR2};
    ///
    /// trapline::run(async {
    ///     let signals = Signals::new(&[SIGUSR2])?;
    ///     let none = trapline::ignore_after(Duration::from_millis(5), signals.recv()).await?;
    ///     assert!(none.is_none(), "no signal came");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Recv<'_> {
        let location = Location::caller();
        Recv {
            signals: self,
            leaves: self.watches.iter().map(|_| Leaf::at(location)).collect(),
            idle: Leaf::at(location),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for watch in self.watches.drain(..) {
            signal_hook::low_level::unregister(watch.id);
            // Forget the fd in the kernel before it closes; outside a kernel
            // there is nothing to forget.
            let _ = trapline_traps::io_release(watch.reader.as_raw_fd());
        }
    }
}

/// The future of [`Signals::recv`].
///
/// # Examples
///
/// ```
/// use trapline::signal::{Recv, Signals, SIGUSR1};
///
/// trapline::run(async {
///     let signals = Signals::new(&[SIGUSR1])?;
///     let recv: Recv<'_> = signals.recv();
///     signal_hook::low_level::raise(SIGUSR1)?;
///     assert_eq!(recv.await?, SIGUSR1);
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a> {
    signals: &'a Signals,
    leaves: Vec<Leaf>,
    /// Where an empty set waits (for an interrupt).
    idle: Leaf,
}

impl fmt::Debug for Recv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("signals", self.signals)
            .finish()
    }
}

/// Reads every byte waiting on `reader`: `Ok(true)` if there was any.
fn drain(mut reader: &UnixStream) -> io::Result<bool> {
    let mut buf = [0u8; 64];
    let mut any = false;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(any), // the handler's end is gone
            Ok(_) => any = true,
            // Drained: the edge for the next signal is guaranteed.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(any),
            // A signal interrupted the read itself: read again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

impl Future for Recv<'_> {
    type Output = io::Result<i32>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<i32>> {
        let this = self.get_mut();
        // Try every socket first: the registration is edge-triggered, so a
        // leaf traps only after it has seen `WouldBlock` itself.
        for watch in &this.signals.watches {
            match drain(&watch.reader) {
                Ok(true) => {
                    this.leaves.iter_mut().for_each(Leaf::done);
                    return Poll::Ready(Ok(watch.signal));
                }
                Ok(false) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if this.signals.watches.is_empty() {
            return match this.idle.trap(cx, Trap::FutureWait) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e.into())),
            };
        }
        for (watch, leaf) in this.signals.watches.iter().zip(&mut this.leaves) {
            let fd = watch.reader.as_raw_fd();
            if let Err(e) = leaf.trap(cx, Trap::ReadWait { fd }) {
                this.leaves.iter_mut().for_each(Leaf::done);
                return Poll::Ready(Err(e.into()));
            }
        }
        Poll::Pending
    }
}
