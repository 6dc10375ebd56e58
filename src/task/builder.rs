//! Spawning with settings: a name for the task.
//!
//! A name costs nothing to the kernel's loop: it travels with the `Spawn`
//! trap to the hooks (and so to the monitor's `ps`) and to the trace line of
//! the spawn, and the kernel keeps no copy of it. Plain [`super::spawn`]
//! stays the short way; the builder is for tasks someone will want to find.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;

use trapline_traps::TrapError;

use super::{spawn_as, JoinHandle};

/// Settings for a task about to be spawned, in the manner of
/// `std::thread::Builder`.
///
/// # Examples
///
/// ```
/// use trapline::task::Builder;
///
/// trapline::run(async {
///     let task = Builder::new().name("answer").spawn(async { 42 })?;
///     assert_eq!(task.join().await?, 42);
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<Cow<'static, str>>,
}

impl Builder {
    /// A builder for an unnamed task.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let task = trapline::task::Builder::new().spawn(async { "plain" })?;
    ///     assert_eq!(task.join().await?, "plain");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Builder {
        Builder { name: None }
    }

    /// Names the task: the monitor's `ps` shows it, hooks receive it, and the
    /// trace prints it on the spawn line. A `&'static str` is not copied.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::task::Builder;
    ///
    /// trapline::run(async {
    ///     let peer = "127.0.0.1:5000";
    ///     let task = Builder::new().name(format!("conn {peer}")).spawn(async {})?;
    ///     task.join().await?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Starts the task, as [`crate::spawn`] does, with these settings. The
    /// spawn is reported at the caller's line.
    ///
    /// # Examples
    ///
    /// Outside a kernel there is nothing to spawn on:
    ///
    /// ```
    /// use trapline::task::Builder;
    /// use trapline::TrapError;
    ///
    /// let refused = Builder::new().name("orphan").spawn(async {}).unwrap_err();
    /// assert_eq!(refused, TrapError::NoKernel);
    /// ```
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> Result<JoinHandle<F::Output>, TrapError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_as(future, self.name, Location::caller())
    }
}
