//! How a trap can end badly, and how that travels through `io::Error`.
//!
//! `Cancelled` and `TimedOut` are not failures of the leaf: they are the
//! kernel's way of telling the task to stop, delivered at the exact point where
//! it would have waited. They stay in force (every later wait fails too), so
//! a task that must wait to clean up does it inside a shield.

use std::error::Error;
use std::fmt;
use std::io;

use crate::ids::TimeoutId;

/// Why a trap did not simply resume.
///
/// Converts into `io::Error` so `?` works in I/O code; [`TrapError::from_io`]
/// gets it back out.
///
/// # Examples
///
/// ```
/// use std::io;
/// use trapline_traps::TrapError;
///
/// let e: io::Error = TrapError::Cancelled.into();
/// assert_eq!(TrapError::from_io(&e), Some(&TrapError::Cancelled));
/// assert!(TrapError::is_cancellation(&e));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapError {
    /// The task was cancelled. Delivered once, at a blocking trap.
    Cancelled,
    /// The timeout `id` expired while this leaf was inside its scope.
    TimedOut(TimeoutId),
    /// An *enclosing* timeout, `id`, expired inside a `timeout_after` block:
    /// that block reports this instead of its own `TimedOut`, so a retry loop
    /// around an inner timeout does not mistake the end of the outer one for
    /// its own. The enclosing block then reports `TimedOut(id)`.
    OuterTimeout(TimeoutId),
    /// Another leaf already waits on this fd in the same direction
    /// (one reader and one writer per fd).
    ResourceBusy,
    /// No trapline kernel is running on this thread.
    NoKernel,
    /// The kernel cannot serve this request (for example an immediate trap
    /// posted as a blocking one, or a trap a hand-written loop does not know).
    Unsupported(&'static str),
    /// The kernel's poller refused the fd (an OS error number), for example a
    /// regular file, which epoll cannot watch.
    Os(i32),
}

impl TrapError {
    /// The trap error inside an `io::Error`, if it carries one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use trapline_traps::{TimeoutId, TrapError};
    ///
    /// let id = TimeoutId::new(0, 3);
    /// let err: io::Error = TrapError::TimedOut(id).into();
    /// assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    /// assert_eq!(TrapError::from_io(&err), Some(&TrapError::TimedOut(id)));
    /// assert_eq!(TrapError::from_io(&io::Error::other("disk on fire")), None);
    /// ```
    pub fn from_io(err: &io::Error) -> Option<&TrapError> {
        err.get_ref()?.downcast_ref::<TrapError>()
    }

    /// Whether `err` is a cancellation delivered by the kernel.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use trapline_traps::TrapError;
    ///
    /// let cancelled: io::Error = TrapError::Cancelled.into();
    /// assert!(TrapError::is_cancellation(&cancelled));
    /// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    /// assert!(!TrapError::is_cancellation(&refused));
    /// ```
    pub fn is_cancellation(err: &io::Error) -> bool {
        TrapError::from_io(err) == Some(&TrapError::Cancelled)
    }

    /// Whether `err` is a timeout delivered by the kernel (its own or an
    /// enclosing one).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use trapline_traps::{TimeoutId, TrapError};
    ///
    /// let id = TimeoutId::new(0, 1);
    /// let own: io::Error = TrapError::TimedOut(id).into();
    /// let outer: io::Error = TrapError::OuterTimeout(id).into();
    /// assert!(TrapError::is_timeout(&own) && TrapError::is_timeout(&outer));
    /// assert!(!TrapError::is_timeout(&TrapError::Cancelled.into()));
    /// ```
    pub fn is_timeout(err: &io::Error) -> bool {
        matches!(
            TrapError::from_io(err),
            Some(TrapError::TimedOut(_) | TrapError::OuterTimeout(_))
        )
    }
}

impl fmt::Display for TrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapError::Cancelled => f.write_str("task cancelled"),
            TrapError::TimedOut(id) => write!(f, "{id} expired"),
            TrapError::OuterTimeout(id) => write!(f, "enclosing {id} expired"),
            TrapError::ResourceBusy => {
                f.write_str("another task is already waiting on this fd in the same direction")
            }
            TrapError::NoKernel => f.write_str("no trapline kernel is running on this thread"),
            TrapError::Unsupported(what) => write!(f, "unsupported trap: {what}"),
            TrapError::Os(code) => write!(f, "{}", io::Error::from_raw_os_error(*code)),
        }
    }
}

impl Error for TrapError {}

impl From<TrapError> for io::Error {
    fn from(err: TrapError) -> io::Error {
        // Never `Interrupted`: std's I/O helpers retry that kind forever.
        let kind = match err {
            TrapError::TimedOut(_) | TrapError::OuterTimeout(_) => io::ErrorKind::TimedOut,
            TrapError::ResourceBusy => io::ErrorKind::ResourceBusy,
            TrapError::Os(code) => io::Error::from_raw_os_error(code).kind(),
            TrapError::Cancelled | TrapError::NoKernel | TrapError::Unsupported(_) => {
                io::ErrorKind::Other
            }
        };
        io::Error::new(kind, err)
    }
}
