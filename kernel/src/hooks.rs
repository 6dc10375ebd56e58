//! Activation hooks: user callbacks on the four moments of a task's life.
//!
//! A task is *created* (spawned), starts *running* (each poll), is
//! *suspended* (the poll returned `Pending`; the hook sees the traps it is
//! parked on now) and is *terminated* (it completed, panicked, or was
//! dropped at shutdown). That is Curio's `Activation`, and it is all a
//! monitor, a tracer or a timeline needs to watch a kernel from outside.
//!
//! Principles:
//!
//! - **Nil cost when none is installed.** The kernel checks one `Vec` for
//!   emptiness; it reads no clock and copies no park for nobody.
//! - **Hooks are user code.** They run while the kernel's state is released,
//!   so a hook may make immediate traps (read the clock, spawn, cancel). A
//!   hook that panics is logged and the kernel runs on.
//! - **Where each runs.** `running`, `suspended` and `terminated` run between
//!   polls, with no task current (`current()` fails). `created` runs inside
//!   the `Spawn` trap, so during the spawner's poll, with the spawner current:
//!   what it spawns is the spawner's child, and its own spawn calls `created`
//!   again (a hook that spawns for every task it is told of never ends). The
//!   main task's `created` runs before any poll, with no task current.
//! - **Read-only by default.** A hook is told; it decides nothing. To act on a
//!   task it uses the traps, like anyone else.
//!
//! Discussion: `suspended` reports the task's parks *as they stand after the
//! poll*, not only the requests this poll posted. A combinator such as
//! `FuturesUnordered` re-polls only the child that was woken, so a poll may
//! post one request while the task stays parked under two. A `Yield` parks
//! nothing (the task is ready again at once) and is reported with its line all
//! the same, so a hook sees why the task stepped aside.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::time::Instant;

use trapline_traps::{TaskId, Trap};

use crate::run::contain;
use crate::task::Park;

/// Callbacks on a task's life, installed with [`crate::Builder::hooks`].
///
/// Every method does nothing by default: implement the ones you need. `at`
/// is the kernel's clock at the moment.
///
/// # Examples
///
/// Counting polls:
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Instant;
/// use trapline_kernel::{Builder, Hooks};
/// use trapline_traps::TaskId;
///
/// #[derive(Default)]
/// struct Polls(Cell<u32>);
/// impl Hooks for Polls {
///     fn running(&self, _task: TaskId, _at: Instant) {
///         self.0.set(self.0.get() + 1);
///     }
/// }
///
/// let polls = Rc::new(Polls::default());
/// let mut kernel = Builder::new().hooks(polls.clone()).build()?;
/// kernel.run(async {})?;
/// assert_eq!(polls.0.get(), 1, "the main task, polled once");
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Hooks {
    /// Task `task` was created: the main task when a run begins, or a spawn.
    ///
    /// Called from inside the spawn, during the spawner's poll: the spawner
    /// is the current task (see the module's principles).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use trapline_kernel::{Builder, Hooks, Spawned};
    /// use trapline_traps::TaskId;
    ///
    /// #[derive(Default)]
    /// struct Names(RefCell<Vec<String>>);
    /// impl Hooks for Names {
    ///     fn created(&self, _task: TaskId, spawned: &Spawned<'_>) {
    ///         self.0.borrow_mut().push(spawned.name.unwrap_or("?").to_string());
    ///     }
    /// }
    ///
    /// let names = Rc::new(Names::default());
    /// Builder::new().hooks(names.clone()).build()?.run(async {
    ///     trapline_traps::spawn(Box::pin(async {})).unwrap();
    /// })?;
    /// assert_eq!(*names.0.borrow(), ["main", "?"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn created(&self, task: TaskId, spawned: &Spawned<'_>) {
        let _ = (task, spawned);
    }

    /// Task `task` is about to be polled.
    ///
    /// # Examples
    ///
    /// Which tasks ran, in order: the main task, which ends at once, then
    /// the child it spawned, which the run's shutdown still gives its poll
    /// (cancelled, with a grace to finish).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Instant;
    /// use trapline_kernel::{Builder, Hooks};
    /// use trapline_traps::TaskId;
    ///
    /// #[derive(Default)]
    /// struct Ran(RefCell<Vec<TaskId>>);
    /// impl Hooks for Ran {
    ///     fn running(&self, task: TaskId, _at: Instant) {
    ///         self.0.borrow_mut().push(task);
    ///     }
    /// }
    ///
    /// let ran = Rc::new(Ran::default());
    /// let (main, child) = Builder::new().hooks(ran.clone()).build()?.run(async {
    ///     let child = trapline_traps::spawn(Box::pin(async {})).unwrap();
    ///     (trapline_traps::current().unwrap(), child)
    /// })?;
    /// assert_eq!(*ran.0.borrow(), [main, child]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn running(&self, task: TaskId, at: Instant) {
        let _ = (task, at);
    }

    /// Task `task`'s poll returned `Pending`; `parks` are the traps it waits
    /// under now (empty if it waits on a foreign waker only).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Instant;
    /// use trapline_kernel::{Builder, Hooks, Parked};
    /// use trapline_traps::TaskId;
    ///
    /// #[derive(Default)]
    /// struct Traps(RefCell<Vec<String>>);
    /// impl Hooks for Traps {
    ///     fn suspended(&self, _task: TaskId, parks: &[Parked], _at: Instant) {
    ///         for park in parks {
    ///             self.0.borrow_mut().push(park.trap.name().to_string());
    ///         }
    ///     }
    /// }
    ///
    /// let traps = Rc::new(Traps::default());
    /// Builder::new().hooks(traps.clone()).build()?.run(async {
    ///     // Step aside once, the way `trapline::yield_now` does.
    ///     let (mut leaf, mut yielded) = (trapline_traps::Leaf::new(), false);
    ///     std::future::poll_fn(|cx| {
    ///         if std::mem::replace(&mut yielded, true) {
    ///             leaf.done();
    ///             return std::task::Poll::Ready(());
    ///         }
    ///         leaf.trap(cx, trapline_traps::Trap::Yield).unwrap();
    ///         std::task::Poll::Pending
    ///     })
    ///     .await;
    /// })?;
    /// assert_eq!(*traps.0.borrow(), ["Yield"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn suspended(&self, task: TaskId, parks: &[Parked], at: Instant) {
        let _ = (task, parks, at);
    }

    /// Task `task` is gone, and how it ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Instant;
    /// use trapline_kernel::{Builder, Ended, Hooks};
    /// use trapline_traps::TaskId;
    ///
    /// #[derive(Default)]
    /// struct Ends(RefCell<Vec<Ended>>);
    /// impl Hooks for Ends {
    ///     fn terminated(&self, _task: TaskId, how: Ended, _at: Instant) {
    ///         self.0.borrow_mut().push(how);
    ///     }
    /// }
    ///
    /// let ends = Rc::new(Ends::default());
    /// Builder::new().hooks(ends.clone()).build()?.run(async {})?;
    /// assert_eq!(*ends.0.borrow(), [Ended::Completed]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn terminated(&self, task: TaskId, how: Ended, at: Instant) {
        let _ = (task, how, at);
    }
}

/// What [`Hooks::created`] is told about a new task.
///
/// # Examples
///
/// The main task is named `main`, has no parent, and was "spawned" at the
/// line of the `run` call:
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use trapline_kernel::{Builder, Hooks, Spawned};
/// use trapline_traps::TaskId;
///
/// #[derive(Default)]
/// struct First(RefCell<Option<(String, u32, bool)>>);
/// impl Hooks for First {
///     fn created(&self, _task: TaskId, s: &Spawned<'_>) {
///         let seen = (s.name.unwrap_or("").to_string(), s.location.line(), s.parent.is_none());
///         self.0.borrow_mut().get_or_insert(seen);
///     }
/// }
///
/// let first = Rc::new(First::default());
/// let mut kernel = Builder::new().hooks(first.clone()).build()?;
/// let (_, line) = (kernel.run(async {})?, line!());
/// assert_eq!(*first.0.borrow(), Some(("main".to_string(), line, true)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Spawned<'a> {
    /// The name given at spawn; `"main"` for a run's main task.
    pub name: Option<&'a str>,
    /// The source line of the spawn (of the `run` call, for the main task).
    pub location: &'static Location<'static>,
    /// The task that spawned it; `None` for the main task.
    pub parent: Option<TaskId>,
    /// The kernel's clock when it was created.
    pub at: Instant,
}

/// One trap a suspended task waits under, as [`Hooks::suspended`] sees it.
///
/// # Examples
///
/// The trap and the line of the await that made it, as a monitor shows them:
///
/// ```
/// use trapline_kernel::Parked;
/// use trapline_traps::Trap;
///
/// let (park, line) = (Parked { trap: Trap::ReadWait { fd: 7 }, location: std::panic::Location::caller() }, line!());
/// let shown = format!("{} at line {}", park.trap, park.location.line());
/// assert_eq!(shown, format!("ReadWait(fd 7) at line {line}"));
/// ```
#[derive(Debug)]
pub struct Parked {
    /// The request, rebuilt from the park (always a blocking trap).
    pub trap: Trap,
    /// The source line of the await that trapped.
    pub location: &'static Location<'static>,
}

impl Parked {
    pub(crate) fn of(park: &Park) -> Parked {
        Parked {
            trap: park.on.trap(),
            location: park.location,
        }
    }
}

/// How a task ended, as [`Hooks::terminated`] reports it.
///
/// # Examples
///
/// ```
/// use trapline_kernel::Ended;
///
/// assert_eq!(Ended::Panicked.to_string(), "panicked");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its future returned (after a cancellation, too, if it caught it).
    Completed,
    /// Its future panicked.
    Panicked,
    /// It was dropped unfinished: shutdown, or the kernel's poller failed.
    Dropped,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ended::Completed => "completed",
            Ended::Panicked => "panicked",
            Ended::Dropped => "dropped",
        })
    }
}

/// The hooks a kernel calls, in the order they were installed, and a
/// buffer for the parks `suspended` reports (kept, so a watched kernel does
/// not allocate for it at every poll).
#[derive(Default)]
pub(crate) struct HookList {
    hooks: Vec<Rc<dyn Hooks>>,
    parks: RefCell<Vec<Parked>>,
}

impl Clone for HookList {
    fn clone(&self) -> HookList {
        HookList {
            hooks: self.hooks.clone(),
            parks: RefCell::default(),
        }
    }
}

impl fmt::Debug for HookList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} hook(s)", self.hooks.len())
    }
}

impl HookList {
    pub(crate) fn push(&mut self, hooks: Rc<dyn Hooks>) {
        self.hooks.push(hooks);
    }

    /// Whether any hook is installed: the one branch paid when none is.
    #[inline]
    pub(crate) fn on(&self) -> bool {
        !self.hooks.is_empty()
    }

    pub(crate) fn created(&self, task: TaskId, spawned: &Spawned<'_>) {
        for h in &self.hooks {
            contain("a created hook", || h.created(task, spawned));
        }
    }

    pub(crate) fn running(&self, task: TaskId, at: Instant) {
        for h in &self.hooks {
            contain("a running hook", || h.running(task, at));
        }
    }

    pub(crate) fn suspended(&self, task: TaskId, parks: &[Parked], at: Instant) {
        for h in &self.hooks {
            contain("a suspended hook", || h.suspended(task, parks, at));
        }
    }

    pub(crate) fn terminated(&self, task: TaskId, how: Ended, at: Instant) {
        for h in &self.hooks {
            contain("a terminated hook", || h.terminated(task, how, at));
        }
    }
}

/// The kernel's side: calling the hooks at the right moments, with the
/// state released.
impl crate::calls::Shared {
    /// `created`, for a run's main task.
    pub(crate) fn hook_created_main(&self, id: TaskId, location: &'static Location<'static>) {
        let at = self.state.borrow().now();
        let spawned = Spawned {
            name: Some("main"),
            location,
            parent: None,
            at,
        };
        self.hooks.created(id, &spawned);
    }

    /// `running`, if task `id` is still alive.
    pub(crate) fn hook_running(&self, id: TaskId) {
        let at = {
            let mut st = self.state.borrow_mut();
            if st.task(id).is_none() {
                return;
            }
            st.now()
        };
        self.hooks.running(id, at);
    }

    /// `suspended`, with the task's parks as they stand; `yielded` is the
    /// line of a `Yield` the poll posted, which parks nothing.
    pub(crate) fn hook_suspended(&self, id: TaskId, yielded: Option<&'static Location<'static>>) {
        let mut parks = std::mem::take(&mut *self.hooks.parks.borrow_mut());
        let at = {
            let mut st = self.state.borrow_mut();
            let at = st.now();
            let Some(task) = st.task(id) else { return };
            parks.extend(task.parks.iter().map(Parked::of));
            if let Some(location) = yielded {
                parks.push(Parked {
                    trap: Trap::Yield,
                    location,
                });
            }
            at
        };
        self.hooks.suspended(id, &parks, at);
        parks.clear();
        *self.hooks.parks.borrow_mut() = parks;
    }

    /// `terminated`.
    pub(crate) fn hook_terminated(&self, id: TaskId, how: Ended) {
        let at = self.state.borrow().now();
        self.hooks.terminated(id, how, at);
    }
}
