//! How a group's tasks end, and what a join of the group waits for.

use std::fmt;

use trapline_traps::{TaskId, TrapError};

/// What a join of the group waits for.
///
/// # Examples
///
/// ```
/// use trapline::{Policy, TaskGroup};
///
/// let group = TaskGroup::<u8, ()>::with_policy(Policy::Any);
/// assert_eq!(group.policy(), Policy::Any);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Every task. The first failure ends the wait early: the rest are
    /// cancelled and the join reports that failure.
    #[default]
    All,
    /// The first task to end, whichever way: the rest are cancelled, and the
    /// join reports how that one ended.
    Any,
    /// The first task to succeed: the rest are cancelled, and the join
    /// returns its value. If every task fails, the join reports the first
    /// failure.
    FirstResult,
}

/// How a task of a group failed.
///
/// # Examples
///
/// ```
/// use trapline::TaskFailure;
///
/// let failure: TaskFailure<&str> = TaskFailure::Failed("bad input");
/// assert_eq!(failure.to_string(), "task failed: bad input");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskFailure<E> {
    /// The task returned `Err`.
    Failed(E),
    /// The task panicked; the panic's message.
    Panicked(String),
    /// The task was dropped before it finished (its kernel shut down).
    Dropped,
}

impl<E: fmt::Display> fmt::Display for TaskFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskFailure::Failed(e) => write!(f, "task failed: {e}"),
            TaskFailure::Panicked(msg) => write!(f, "task panicked: {msg}"),
            TaskFailure::Dropped => f.write_str("task was dropped before it finished"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskFailure<E> {}

/// One task of a group that has ended.
///
/// # Examples
///
/// ```
/// use trapline::TaskGroup;
///
/// trapline::run(async {
///     let group = TaskGroup::<u8, ()>::new();
///     let id = group.spawn(async { Ok(5) })?;
///     let done = group.next_done().await?.unwrap();
///     assert_eq!((done.id, done.outcome, done.cancelled), (id, Ok(5), false));
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Finished<T, E> {
    /// The task.
    pub id: TaskId,
    /// What it returned, or how it failed.
    pub outcome: Result<T, TaskFailure<E>>,
    /// Whether the group cancelled it (its failure, if any, is then not
    /// counted as the group's).
    pub cancelled: bool,
}

/// Why a group's join has no value to give.
///
/// # Examples
///
/// ```
/// use trapline::{GroupError, TaskFailure, TaskGroup};
///
/// trapline::run(async {
///     let group = TaskGroup::<(), &str>::new();
///     let id = group.spawn(async { Err("no") })?;
///     assert_eq!(group.join().await, Err(GroupError::Task { id, failure: TaskFailure::Failed("no") }));
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError<E> {
    /// A task failed and decided the join (the first failure; the others
    /// are in [`crate::TaskGroup::take_finished`]).
    Task {
        /// The task that failed.
        id: TaskId,
        /// How.
        failure: TaskFailure<E>,
    },
    /// The owner was interrupted (cancelled, timed out) while it waited; the
    /// group's tasks were cancelled and have ended.
    Interrupted(TrapError),
}

impl<E: fmt::Display> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Task { id, failure } => write!(f, "{id}: {failure}"),
            GroupError::Interrupted(e) => write!(f, "task group join interrupted: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for GroupError<E> {}
