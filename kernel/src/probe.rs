//! A read-only window onto a running kernel, for monitors.
//!
//! Hooks tell a watcher what *happens*; a [`Probe`] answers what *is*: the
//! kernel's counts, whether a task is ready, how many parks wait under each
//! kind of trap. A monitor task holds a probe and asks it between polls,
//! while the kernel's state is free, so asking never blocks or disturbs the
//! loop, and a kernel nobody probes pays nothing.
//!
//! Discussion: a probe holds the kernel weakly. It outlives nothing: once the
//! kernel is dropped, every question answers `None`. It is not `Send`: the
//! kernel it watches lives on one thread.

use std::rc::Weak;

use trapline_traps::TaskId;

use crate::calls::Shared;
use crate::task::RunState;
use crate::Stats;

/// A read-only window onto a kernel, from [`crate::Kernel::probe`].
///
/// # Examples
///
/// A task reads the kernel's counts as it runs:
///
/// ```
/// use trapline_kernel::Kernel;
///
/// let mut kernel = Kernel::new()?;
/// let probe = kernel.probe();
/// let tasks = kernel.run(async move { probe.stats().map(|s| s.tasks) })?;
/// assert_eq!(tasks, Some(1), "the main task");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Probe {
    pub(crate) shared: Weak<Shared>,
}

/// Where a task is, as a [`Probe`] sees it.
///
/// # Examples
///
/// ```
/// use trapline_kernel::{Kernel, TaskState};
///
/// let mut kernel = Kernel::new()?;
/// let probe = kernel.probe();
/// let state = kernel.run(async move { probe.state(trapline_traps::current().unwrap()) })?;
/// assert_eq!(state, Some(TaskState::Running), "a task sees itself running");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// In the ready queue: it runs in this pass or the next.
    Ready,
    /// Being polled now.
    Running,
    /// Parked under its traps, or waiting on a foreign waker.
    Waiting,
}

impl Probe {
    /// The kernel's counts now; `None` once the kernel is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Kernel;
    ///
    /// let kernel = Kernel::new()?;
    /// let probe = kernel.probe();
    /// assert_eq!(probe.stats().map(|s| s.tasks), Some(0), "not running");
    /// drop(kernel);
    /// assert_eq!(probe.stats(), None, "the kernel is gone");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> Option<Stats> {
        let shared = self.shared.upgrade()?;
        let st = shared.state.try_borrow().ok()?;
        Some(Stats::of(&st))
    }

    /// Where task `task` is; `None` if it has ended (or the kernel is gone).
    ///
    /// # Examples
    ///
    /// A task just spawned is ready; once it has ended it is nowhere:
    ///
    /// ```
    /// use trapline_kernel::{Kernel, TaskState};
    ///
    /// let mut kernel = Kernel::new()?;
    /// let probe = kernel.probe();
    /// let (child, state) = kernel.run(async move {
    ///     let child = trapline_traps::spawn(Box::pin(async {})).unwrap();
    ///     (child, probe.state(child))
    /// })?;
    /// assert_eq!(state, Some(TaskState::Ready));
    /// assert_eq!(kernel.probe().state(child), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn state(&self, task: TaskId) -> Option<TaskState> {
        let shared = self.shared.upgrade()?;
        let mut st = shared.state.try_borrow_mut().ok()?;
        Some(match st.task(task)?.state {
            RunState::Ready => TaskState::Ready,
            RunState::Running { .. } => TaskState::Running,
            RunState::Waiting => TaskState::Waiting,
        })
    }

    /// How many parks wait under each kind of trap, by trap name, sorted.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Kernel;
    ///
    /// let mut kernel = Kernel::new()?;
    /// let probe = kernel.probe();
    /// let parked = kernel.run(async move { probe.parked_by_trap() })?;
    /// assert!(parked.is_empty(), "only the main task, and it is running");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parked_by_trap(&self) -> Vec<(&'static str, usize)> {
        let Some(shared) = self.shared.upgrade() else {
            return Vec::new();
        };
        let Ok(st) = shared.state.try_borrow() else {
            return Vec::new();
        };
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for (_, task) in st.tasks.iter() {
            for park in &task.parks {
                let name = park.on.trap().name();
                match counts.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, count)) => *count += 1,
                    None => counts.push((name, 1)),
                }
            }
        }
        counts.sort();
        counts
    }
}
