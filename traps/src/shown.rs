//! The time trap requests are shown against.
//!
//! A `Sleep` or `SetTimeout` request prints how far its deadline is
//! (`Sleep(in 20.00ms)`). That distance must be measured on the clock of the
//! kernel that will honour the request, which is not always the system's: a
//! kernel with a virtual clock tells this thread what time it is with
//! [`show_times_against`], and trace lines and `Debug` output then never mix
//! the two clocks.
//!
//! Outside a kernel's `run` (a request built or printed by hand, a `Debug`
//! of one kept after the run), nothing has set the time, and countdowns are
//! shown against the system's real clock.
//!
//! Both functions are public only so that the kernel crate can set and
//! read the time; they are hidden from the documentation and are not part
//! of the API users should build on.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static SHOWN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Sets the time this thread's trap requests are shown against; `None` means
/// the system's monotonic clock (the default). For the kernel's use only.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use trapline_traps::{show_times_against, Trap};
///
/// let virtual_now = Instant::now() + Duration::from_secs(3600);
/// show_times_against(Some(virtual_now));
/// let trap = Trap::Sleep { deadline: virtual_now + Duration::from_millis(20) };
/// assert_eq!(trap.to_string(), "Sleep(in 20.00ms)");
/// show_times_against(None);
/// ```
#[doc(hidden)]
pub fn show_times_against(now: Option<Instant>) {
    SHOWN.with(|s| s.set(now));
}

/// The time trap requests are shown against on this thread: the kernel's
/// clock inside its `run`, the system's real clock anywhere else. For the
/// kernel's use only.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
///
/// let before = Instant::now();
/// assert!(trapline_traps::shown_now() >= before, "the system's clock by default");
/// ```
#[doc(hidden)]
pub fn shown_now() -> Instant {
    SHOWN.with(Cell::get).unwrap_or_else(Instant::now)
}
