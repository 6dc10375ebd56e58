//! Task groups: structured concurrency, so that no task outlives its group.
//!
//! A [`TaskGroup`] owns the tasks spawned into it. Its owner consumes their
//! completions in the order they happen ([`TaskGroup::next_done`],
//! [`TaskGroup::next_result`]) or joins the group as a whole under a
//! [`Policy`]: wait for all of them, for the first to end, or for the first
//! to succeed. However the join ends — decided, failed, or interrupted — the
//! tasks left are cancelled and waited for before it returns. That wait is
//! shielded: an owner that was itself cancelled still sees its children end
//! first, which is the *cascade*: cancelling a parent cancels its children,
//! theirs before them, and the parent ends last.
//!
//! Everything here is library code over traps: tasks start with `Spawn`, are
//! stopped with `Cancel`, and the owner waits for completions in a `SchedWait`
//! line that each task's end wakes (see `sync::waitlist`).
//!
//! Discussion: the order of a cascade. When a join gives up (decided, or
//! interrupted), it sends `Cancel` to the tasks still running in the order
//! they were spawned, daemons included; each is resumed at its trap in that
//! order and cleans up (a child that owns a group cancels and waits for its
//! own children the same way), and the join returns once the last has ended.
//! So children start their cleanup in spawn order, a grandchild ends before
//! its parent, and the owner's join returns after all of them.
//!
//! Rust has no asynchronous drop, so the cascade holds only while the owner
//! is inside a join ([`TaskGroup::join`], [`TaskGroup::cancel_remaining`],
//! or the end of [`TaskGroup::scope`] / [`TaskGroup::try_scope`]). An owner
//! interrupted anywhere else — waiting on a lock, a socket, a sleep — that
//! returns early (with `?`) drops its group without a join: dropping the
//! last handle sends `Cancel` to the tasks left but cannot wait for them,
//! so the owner ends *first* and its children finish their cleanup after
//! it, on their own. And a handle cloned into one of the group's tasks
//! keeps the group alive: then dropping the owner's handle cancels nothing
//! until that task ends. For the cascade, do the owner's waiting inside
//! `scope` or `try_scope`, whose join runs however the body ends (a
//! cancelled body's join is cancelled too, and cancels and waits, shielded).
//!
//! # Layout
//!
//! - `outcome`: [`Policy`], [`TaskFailure`], [`Finished`], [`GroupError`].
//! - `members`: the bookkeeping behind a group.

mod members;
mod outcome;

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::rc::Rc;

use trapline_traps::{TaskId, TrapError};

use crate::sync::WaitList;
use crate::task::spawn_then;
use members::{Decision, Inner, Notice, State};
pub use outcome::{Finished, GroupError, Policy, TaskFailure};

/// A set of tasks that ends together; see the module's principles.
///
/// Its tasks return `Result<T, E>`; a handle is cheap to clone (all clones
/// are the same group), so tasks can spawn siblings into it.
///
/// # Examples
///
/// The first result wins; the slower task is cancelled:
///
/// ```
/// use std::time::Duration;
/// use trapline::{sleep, Policy, TaskGroup};
///
/// trapline::run(async {
///     let group = TaskGroup::<&str, trapline::TrapError>::with_policy(Policy::FirstResult);
///     group.spawn(async { sleep(Duration::from_secs(60)).await.map(|()| "slow") })?;
///     group.spawn(async { Ok("fast") })?;
///     assert_eq!(group.join().await, Ok(Some("fast")));
///     let slow = group.take_finished().pop().unwrap();
///     assert!(slow.cancelled);
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TaskGroup<T, E> {
    inner: Rc<Inner<T, E>>,
}

impl<T, E> Clone for TaskGroup<T, E> {
    fn clone(&self) -> Self {
        TaskGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<T, E> fmt::Debug for TaskGroup<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.state.borrow();
        f.debug_struct("TaskGroup")
            .field("policy", &self.inner.policy)
            .field("running", &s.running())
            .field("finished", &s.finished.len())
            .field("joined", &s.joined)
            .finish()
    }
}

impl<T: 'static, E: 'static> Default for TaskGroup<T, E> {
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<T: 'static, E: 'static> TaskGroup<T, E> {
    /// An empty group whose join waits for every task ([`Policy::All`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let group = trapline::TaskGroup::<(), ()>::new();
    /// assert_eq!(group.policy(), trapline::Policy::All);
    /// ```
    pub fn new() -> TaskGroup<T, E> {
        TaskGroup::with_policy(Policy::All)
    }

    /// An empty group whose join follows `policy`.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::{Policy, TaskGroup};
    ///
    /// let group = TaskGroup::<(), ()>::with_policy(Policy::FirstResult);
    /// assert_eq!(group.running(), 0);
    /// ```
    pub fn with_policy(policy: Policy) -> TaskGroup<T, E> {
        TaskGroup {
            inner: Rc::new(Inner {
                policy,
                state: RefCell::new(State::new()),
                changes: WaitList::default(),
            }),
        }
    }

    /// The group's join policy.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(trapline::TaskGroup::<(), ()>::new().policy(), trapline::Policy::All);
    /// ```
    pub fn policy(&self) -> Policy {
        self.inner.policy
    }

    /// How many of its tasks (daemons included) are still running.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let group = trapline::TaskGroup::<(), ()>::new();
    ///     group.spawn(async { Ok(()) })?;
    ///     assert_eq!(group.running(), 1);
    ///     group.join().await.unwrap();
    ///     assert_eq!(group.running(), 0);
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn running(&self) -> usize {
        self.inner.state.borrow().running()
    }

    /// A key for a new task, with the notice that will tell its end.
    fn reserve(&self) -> Result<Notice<T, E>, TrapError> {
        let mut s = self.inner.state.borrow_mut();
        if s.joined {
            return Err(TrapError::Unsupported(
                "spawn into a task group that has been joined",
            ));
        }
        s.next_key += 1;
        Ok(Notice {
            group: Rc::downgrade(&self.inner),
            key: s.next_key,
            told: false,
        })
    }

    fn enroll(&self, key: u64, id: TaskId, daemon: bool) {
        self.inner.state.borrow_mut().enroll(key, id, daemon);
    }

    /// Starts a task in the group; it runs at the kernel's next pass.
    ///
    /// Fails with `Unsupported` once the group has been joined (a joined
    /// group is over), or as [`crate::spawn`] fails.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let group = trapline::TaskGroup::<u8, ()>::new();
    ///     group.spawn(async { Ok(1) })?;
    ///     group.join().await.unwrap();
    ///     assert!(group.spawn(async { Ok(2) }).is_err(), "joined: over");
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Result<TaskId, TrapError>
    where
        F: Future<Output = Result<T, E>> + 'static,
    {
        self.start(None, future, Location::caller())
    }

    /// [`TaskGroup::spawn`], with a name for the task (shown by the
    /// monitor and in logs; see [`crate::task::Builder`]).
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let group = trapline::TaskGroup::<u8, ()>::new();
    ///     group.spawn_named("worker 1", async { Ok(1) })?;
    ///     assert_eq!(group.next_result().await?, Some(Ok(1)));
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn spawn_named<F>(
        &self,
        name: impl Into<Cow<'static, str>>,
        future: F,
    ) -> Result<TaskId, TrapError>
    where
        F: Future<Output = Result<T, E>> + 'static,
    {
        self.start(Some(name.into()), future, Location::caller())
    }

    fn start<F>(
        &self,
        name: Option<Cow<'static, str>>,
        future: F,
        location: &'static Location<'static>,
    ) -> Result<TaskId, TrapError>
    where
        F: Future<Output = Result<T, E>> + 'static,
    {
        let mut notice = self.reserve()?;
        let key = notice.key;
        // The group hears of the end (a panic included) before the task's
        // future is dropped; see `task::spawn_then` for the order.
        let id = spawn_then(future, name, location, move |ended| {
            notice.tell(Some(match ended {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(TaskFailure::Failed(e)),
                Err(msg) => Err(TaskFailure::Panicked(msg)),
            }));
        })?;
        self.enroll(key, id, false);
        Ok(id)
    }

    /// Starts a *daemon* task: cancelled with the group, waited for when
    /// the group ends, but not one of its results (joins and `next_done`
    /// ignore it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// trapline::run(async {
    ///     let group = trapline::TaskGroup::<u8, ()>::new();
    ///     group.spawn_daemon(trapline::sleep(Duration::from_secs(3600)))?;
    ///     group.spawn(async { Ok(1) })?;
    ///     assert_eq!(group.join().await, Ok(None)); // the daemon was cancelled
    ///     assert_eq!(group.running(), 0);
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn spawn_daemon<F>(&self, future: F) -> Result<TaskId, TrapError>
    where
        F: Future + 'static,
    {
        self.start_daemon(None, future, Location::caller())
    }

    /// [`TaskGroup::spawn_daemon`], with a name for the task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// trapline::run(async {
    ///     let group = trapline::TaskGroup::<u8, ()>::new();
    ///     group.spawn_daemon_named("ticker", trapline::sleep(Duration::from_secs(3600)))?;
    ///     assert_eq!(group.join().await, Ok(None));
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn spawn_daemon_named<F>(
        &self,
        name: impl Into<Cow<'static, str>>,
        future: F,
    ) -> Result<TaskId, TrapError>
    where
        F: Future + 'static,
    {
        self.start_daemon(Some(name.into()), future, Location::caller())
    }

    fn start_daemon<F>(
        &self,
        name: Option<Cow<'static, str>>,
        future: F,
        location: &'static Location<'static>,
    ) -> Result<TaskId, TrapError>
    where
        F: Future + 'static,
    {
        let mut notice = self.reserve()?;
        let key = notice.key;
        let id = spawn_then(future, name, location, move |_| notice.tell(None))?;
        self.enroll(key, id, true);
        Ok(id)
    }

    /// The next task of the group to end, in the order they end; `None`
    /// once no (non-daemon) task is left to end.
    ///
    /// A `SchedWait` trap while it waits: cancellable and timeout-able (an
    /// interrupted wait changes nothing in the group). A task of the group
    /// itself is refused with `Unsupported`: it would wait for its own end.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{sleep, TaskGroup};
    ///
    /// trapline::run(async {
    ///     let group = TaskGroup::<u64, trapline::TrapError>::new();
    ///     for ms in [20, 1, 10] {
    ///         group.spawn(async move { sleep(Duration::from_millis(ms)).await.map(|()| ms) })?;
    ///     }
    ///     let mut order = Vec::new();
    ///     while let Some(done) = group.next_done().await? {
    ///         order.push(done.outcome?);
    ///     }
    ///     assert_eq!(order, [1, 10, 20]);
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn next_done(
        &self,
    ) -> impl Future<Output = Result<Option<Finished<T, E>>, TrapError>> + '_ {
        let location = Location::caller();
        async move {
            self.inner.refuse_member()?;
            loop {
                if let Some(done) = self.inner.state.borrow_mut().finished.pop_front() {
                    return Ok(Some(done));
                }
                if !self.inner.working() {
                    return Ok(None);
                }
                self.inner.changed(location).await?;
            }
        }
    }

    /// Like [`TaskGroup::next_done`], giving only the outcome.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let group = trapline::TaskGroup::<u8, ()>::new();
    ///     group.spawn(async { Ok(3) })?;
    ///     assert_eq!(group.next_result().await?, Some(Ok(3)));
    ///     assert_eq!(group.next_result().await?, None);
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn next_result(
        &self,
    ) -> impl Future<Output = Result<Option<Result<T, TaskFailure<E>>>, TrapError>> + '_ {
        let next = self.next_done();
        async move { Ok(next.await?.map(|done| done.outcome)) }
    }

    /// Cancels every task still running (in spawn order, daemons included)
    /// and waits, shielded, until they have all ended; a task spawned into
    /// the group meanwhile (by a member's cleanup) is cancelled too. Their completions
    /// stay reachable, marked `cancelled`. Called by a task of the group, it
    /// cancels and waits for the others.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// trapline::run(async {
    ///     let group = trapline::TaskGroup::<(), trapline::TrapError>::new();
    ///     group.spawn(trapline::sleep(Duration::from_secs(3600)))?;
    ///     group.cancel_remaining().await?;
    ///     assert_eq!(group.running(), 0);
    ///     let done = group.next_done().await?.unwrap();
    ///     assert!(done.cancelled);
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn cancel_remaining(&self) -> impl Future<Output = Result<(), TrapError>> + '_ {
        let location = Location::caller();
        async move {
            // A member may cancel the rest of its group, not itself.
            let me = trapline_traps::running();
            crate::shield(async {
                // Cancelled again each round: a member's cleanup may spawn a
                // sibling, and that one is cancelled too before the wait.
                loop {
                    self.inner.cancel_all(me);
                    if self.inner.running_but(me) == 0 {
                        return Ok(());
                    }
                    self.inner.changed(location).await?;
                }
            })
            .await
        }
    }

    /// Waits for the group as its [`Policy`] says, then cancels and waits
    /// for whatever is left (daemons too). After it, the group is over: no
    /// task of it runs, and `spawn` is refused.
    ///
    /// Returns: under `All`, `Ok(None)` once every task succeeded (their
    /// values are in [`TaskGroup::take_finished`]), or the first failure;
    /// under `Any`, the value or failure of the first task to end; under
    /// `FirstResult`, the first value, or the first failure if all failed.
    /// An empty group gives `Ok(None)`. If the owner is interrupted while it
    /// waits, the tasks are cancelled and waited for all the same (the
    /// cascade) and the interrupt is returned as
    /// [`GroupError::Interrupted`]. A task of the group itself is refused
    /// with `Interrupted(Unsupported)`: it would wait for its own end.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::{GroupError, Policy, TaskFailure, TaskGroup};
    ///
    /// trapline::run(async {
    ///     let group = TaskGroup::<u8, &str>::with_policy(Policy::Any);
    ///     let id = group.spawn(async { Err("first, and failed") })?;
    ///     group.spawn(async { trapline::yield_now().await.map_err(|_| "cancelled")?; Ok(2) })?;
    ///     let failure = TaskFailure::Failed("first, and failed");
    ///     assert_eq!(group.join().await, Err(GroupError::Task { id, failure }));
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn join(&self) -> impl Future<Output = Decision<T, E>> + '_ {
        let location = Location::caller();
        async move {
            if let Err(e) = self.inner.refuse_member() {
                return Err(GroupError::Interrupted(e));
            }
            let decision = loop {
                if let Some(decided) = self.inner.decide() {
                    break decided;
                }
                if let Err(e) = self.inner.changed(location).await {
                    break Err(GroupError::Interrupted(e));
                }
            };
            self.inner.state.borrow_mut().joined = true;
            // Shielded: only a timeout set inside could fail it, and none is.
            let _ = self.cancel_remaining().await;
            decision
        }
    }

    /// Runs `body`, then joins the group: leaving the scope waits for the
    /// group as its policy says and cancels what is left, so no task of the
    /// group outlives it. Returns `body`'s output and the join's.
    ///
    /// The body's output means nothing to the group: a body that returns an
    /// error still waits for the tasks as the policy says (under `All`, for
    /// every one). For a body that can fail, [`TaskGroup::try_scope`]
    /// cancels the rest when it does.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::TaskGroup;
    ///
    /// trapline::run(async {
    ///     let group = TaskGroup::<u32, ()>::new();
    ///     let (spawned, joined) = group
    ///         .scope(async {
    ///             for i in 0..3 {
    ///                 group.spawn(async move { Ok(i * i) }).unwrap();
    ///             }
    ///             3
    ///         })
    ///         .await;
    ///     assert_eq!((spawned, joined), (3, Ok(None)));
    ///     let mut squares: Vec<u32> = group.take_finished().into_iter().map(|f| f.outcome.unwrap()).collect();
    ///     squares.sort();
    ///     assert_eq!(squares, [0, 1, 4]);
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn scope<'a, R>(
        &'a self,
        body: impl Future<Output = R> + 'a,
    ) -> impl Future<Output = (R, Decision<T, E>)> + 'a {
        let join = self.join();
        async move {
            let out = body.await;
            (out, join.await)
        }
    }

    /// [`TaskGroup::scope`] for a body that can fail: a body returning
    /// `Err` (a `?` inside it) cancels the tasks left and waits for them
    /// before the join, instead of waiting for them as the policy says.
    /// Returns `body`'s result and the join's (cancelled tasks are not
    /// failures: under `All` it is `Ok(None)` unless a task failed before).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::TaskGroup;
    ///
    /// trapline::run(async {
    ///     let group = TaskGroup::<(), trapline::TrapError>::new();
    ///     let (body, joined) = group
    ///         .try_scope(async {
    ///             group.spawn(trapline::sleep(Duration::from_secs(3600)))?;
    ///             "not a number".parse::<u32>()?; // fails: the sleeper is cancelled
    ///             Ok::<(), Box<dyn std::error::Error>>(())
    ///         })
    ///         .await;
    ///     assert!(body.is_err());
    ///     assert_eq!(joined, Ok(None));
    ///     assert!(group.take_finished()[0].cancelled);
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn try_scope<'a, R, X>(
        &'a self,
        body: impl Future<Output = Result<R, X>> + 'a,
    ) -> impl Future<Output = (Result<R, X>, Decision<T, E>)> + 'a {
        let join = self.join();
        let cancel = self.cancel_remaining();
        async move {
            let out = body.await;
            if out.is_err() && self.inner.refuse_member().is_ok() {
                // Over: nothing new may start while the rest is cancelled.
                self.inner.state.borrow_mut().joined = true;
                // Shielded: only a timeout set inside could fail it.
                let _ = cancel.await;
            }
            (out, join.await)
        }
    }

    /// The completions not yet taken by `next_done` or decided by a join,
    /// in the order the tasks ended.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let group = trapline::TaskGroup::<u8, ()>::new();
    ///     group.spawn(async { Ok(1) })?;
    ///     group.join().await.unwrap();
    ///     let finished = group.take_finished();
    ///     assert_eq!(finished.len(), 1);
    ///     assert_eq!(finished[0].outcome, Ok(1));
    ///     assert!(group.take_finished().is_empty());
    ///     Ok::<(), trapline::TrapError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_finished(&self) -> Vec<Finished<T, E>> {
        self.inner.state.borrow_mut().finished.drain()
    }
}
