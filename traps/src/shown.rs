//! The time trap requests are shown against.
//!
//! A `Sleep` or `SetTimeout` request prints how far its deadline is
//! (`Sleep(in 20.00ms)`). That distance must be measured on the clock of the
//! kernel that will honour the request, which is not always the system's: a
//! kernel with a virtual clock tells this thread what time it is with
//! [`show_times_against`], and trace lines and `Debug` output then never mix
//! the two clocks.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static SHOWN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Sets the time this thread's trap requests are shown against; `None` means
/// the system's monotonic clock (the default).
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
pub fn show_times_against(now: Option<Instant>) {
    SHOWN.with(|s| s.set(now));
}

/// The time trap requests are shown against on this thread.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
///
/// let before = Instant::now();
/// assert!(trapline_traps::shown_now() >= before, "the system's clock by default");
/// ```
pub fn shown_now() -> Instant {
    SHOWN.with(Cell::get).unwrap_or_else(Instant::now)
}
