//! Tasks: spawn one (plainly, or named through a [`Builder`]), join it,
//! cancel it, ask who is running.
//!
//! A spawned future is wrapped so that its output (or its panic) lands in a
//! slot shared with its [`JoinHandle`]; the kernel only sees a task that
//! produces nothing. Joining is a `Join` trap: the joiner parks until the
//! task ends, then reads the slot.

mod body;
mod builder;

pub(crate) use body::spawn_then;
pub use builder::Builder;

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use trapline_traps::{Leaf, TaskId, Trap, TrapError};

/// How a task ended, as its joiner sees it.
///
/// Discussion: one slot per spawned task, so its size counts. It sits in a
/// `Cell`, not a `RefCell` (every access replaces the value and puts it back:
/// no borrow to track), and a panic's message is a `Box<str>` (two words, not
/// a `String`'s three), which lets `Done`'s value share its room with the
/// other cases: for a task ending in `()` or in `Result<(), TrapError>` the
/// whole `Rc` is 40 bytes, a 48-byte block of the allocator instead of 64.
enum Outcome<T> {
    Running,
    Done(T),
    Panicked(Box<str>),
    Dropped,
    Taken,
}

/// The result slot a task shares with its handle.
type Slot<T> = Rc<Cell<Outcome<T>>>;

/// Looks at a slot without taking what is in it.
fn peek<T, R>(slot: &Slot<T>, look: impl FnOnce(&mut Outcome<T>) -> R) -> R {
    let mut outcome = slot.replace(Outcome::Taken);
    let answer = look(&mut outcome);
    slot.set(outcome);
    answer
}

/// Why [`JoinHandle::join`] has no value to give.
///
/// # Examples
///
/// ```
/// use trapline::{spawn, JoinError};
///
/// trapline::run(async {
///     let task = spawn(async { panic!("boom") })?;
///     match task.join().await {
///         Err(JoinError::Panicked(msg)) => assert_eq!(msg, "boom"),
///         other => panic!("unexpected: {other:?}"),
///     }
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The task panicked; the panic's message.
    Panicked(String),
    /// The task was dropped before it finished (its kernel shut down).
    Dropped,
    /// The *joining* task was interrupted while it waited (cancelled, timed
    /// out), or no kernel runs here. The joined task goes on.
    Interrupted(TrapError),
    /// An earlier join through the same handle already took the output.
    AlreadyJoined,
}

impl JoinError {
    /// Whether the joiner itself was cancelled while it waited.
    ///
    /// # Examples
    ///
    /// A task that waits to join a sleeper is cancelled: its join fails, the
    /// sleeper goes on.
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{sleep, spawn};
    ///
    /// trapline::run(async {
    ///     let sleeper = spawn(async { sleep(Duration::from_secs(3600)).await })?;
    ///     let joiner = spawn(async move { sleeper.join().await })?;
    ///     let joined = joiner.cancel().await?;
    ///     assert!(joined.unwrap_err().is_cancelled());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        *self == JoinError::Interrupted(TrapError::Cancelled)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(msg) => write!(f, "task panicked: {msg}"),
            JoinError::Dropped => f.write_str("task was dropped before it finished"),
            JoinError::Interrupted(e) => write!(f, "join interrupted: {e}"),
            JoinError::AlreadyJoined => f.write_str("the task's output was already taken"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(err: JoinError) -> io::Error {
        match err {
            JoinError::Interrupted(e) => e.into(),
            other => io::Error::other(other),
        }
    }
}

/// The owner's side of a spawned task: its id, and the way to its result.
///
/// Dropping the handle detaches the task: it runs on, and its result is
/// dropped when it ends.
///
/// # Examples
///
/// ```
/// use trapline::spawn;
///
/// trapline::run(async {
///     let task = spawn(async { 40 + 2 })?;
///     assert!(!task.is_finished(), "it starts at the kernel's next pass");
///     assert_eq!(task.join().await?, 42);
///     assert!(task.is_finished());
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A handle shares its task's result slot through an `Rc`, so it stays on
/// the thread of its kernel: it is not `Send`.
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// trapline::run(async {
///     let task = trapline::spawn(async { 1 }).unwrap();
///     send(task); // error: `Rc<Cell<..>>` cannot be sent between threads safely
/// })
/// .unwrap();
/// ```
pub struct JoinHandle<T> {
    id: TaskId,
    slot: Slot<T>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

/// Marks the slot `Dropped` if the task's body goes away unfinished.
struct Finish<T> {
    slot: Slot<T>,
}

impl<T> Drop for Finish<T> {
    fn drop(&mut self) {
        peek(&self.slot, |outcome| {
            if matches!(outcome, Outcome::Running) {
                *outcome = Outcome::Dropped;
            }
        });
    }
}

pub(crate) fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => match panic.downcast::<&str>() {
            Ok(s) => s.to_string(),
            Err(_) => "Box<dyn Any>".to_string(),
        },
    }
}

/// Starts a task running `future` on the current kernel.
///
/// The task starts at the kernel's next pass. A panic inside it ends only
/// that task and becomes its [`JoinError::Panicked`]. Fails with
/// [`TrapError::NoKernel`] outside a running kernel.
///
/// # Examples
///
/// ```
/// use trapline::spawn;
///
/// let sum = trapline::run(async {
///     let a = spawn(async { 1 })?;
///     let b = spawn(async { 2 })?;
///     Ok::<_, std::io::Error>(a.join().await? + b.join().await?)
/// })??;
/// assert_eq!(sum, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>, TrapError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_as(future, None, Location::caller())
}

/// [`spawn`], with a name and the line to report as the spawn's.
pub(crate) fn spawn_as<F>(
    future: F,
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
) -> Result<JoinHandle<F::Output>, TrapError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let slot = Rc::new(Cell::new(Outcome::Running));
    let finish = Finish { slot: slot.clone() };
    let id = spawn_then(future, name, location, move |ended| {
        finish.slot.set(match ended {
            Ok(v) => Outcome::Done(v),
            Err(msg) => Outcome::Panicked(msg.into_boxed_str()),
        });
    })?;
    Ok(JoinHandle { id, slot })
}

impl<T> JoinHandle<T> {
    /// The task's id.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let task = trapline::spawn(async { trapline::current() })?;
    ///     assert_eq!(task.join().await??, task.id());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Whether the task has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let task = trapline::spawn(async {})?;
    ///     assert!(!task.is_finished());
    ///     trapline::yield_now().await?; // the task runs in the next pass
    ///     assert!(task.is_finished());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        peek(&self.slot, |outcome| !matches!(outcome, Outcome::Running))
    }

    /// Waits for the task to end and returns its output.
    ///
    /// A `Join` trap: cancellable and timeout-able. An interrupted join leaves
    /// the handle as it was: the task goes on and can be joined (or
    /// cancelled) again. Once a join has returned the output, another join
    /// returns [`JoinError::AlreadyJoined`].
    ///
    /// # Examples
    ///
    /// ```
    /// trapline::run(async {
    ///     let task = trapline::spawn(async { "done" })?;
    ///     assert_eq!(task.join().await?, "done");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn join(&self) -> Join<'_, T> {
        Join {
            handle: self,
            leaf: Leaf::new(),
        }
    }

    /// Cancels the task, waits for it to end, and returns how it ended.
    ///
    /// The cancel is sent when this is called; awaiting the returned future
    /// waits for the end.
    ///
    /// The task sees `Cancelled` at its current blocking trap, and at every
    /// one after it; it may clean up inside [`crate::shield`] before it ends. If it catches the
    /// cancellation and returns a value, that value is `Ok` here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use trapline::{sleep, spawn, TrapError};
    ///
    /// trapline::run(async {
    ///     let sleeper = spawn(async { sleep(Duration::from_secs(3600)).await })?;
    ///     assert_eq!(sleeper.cancel().await?, Err(TrapError::Cancelled));
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn cancel(&self) -> Join<'_, T> {
        let join = self.join();
        if !self.is_finished() {
            // Outside a kernel this fails, and so will the join, which reports it.
            let _ = trapline_traps::cancel(self.id);
        }
        join
    }
}

/// The future of [`JoinHandle::join`] and [`JoinHandle::cancel`].
///
/// # Examples
///
/// A join is a trap like any other: a timeout interrupts the join, not the
/// task joined.
///
/// ```
/// use std::time::Duration;
/// use trapline::{sleep, spawn, timeout_after, TrapError};
///
/// trapline::run(async {
///     let task = spawn(async { sleep(Duration::from_secs(3600)).await })?;
///     let waited = timeout_after(Duration::from_millis(10), task.join()).await;
///     assert!(matches!(waited, Err(TrapError::TimedOut(_))));
///     assert!(!task.is_finished());
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Join<'a, T> {
    handle: &'a JoinHandle<T>,
    leaf: Leaf,
}

impl<T> fmt::Debug for Join<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join").field("id", &self.handle.id).finish()
    }
}

impl<T> Future for Join<'_, T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let slot = &this.handle.slot;
        let ended = match slot.replace(Outcome::Taken) {
            Outcome::Running => {
                slot.set(Outcome::Running);
                None
            }
            Outcome::Done(v) => Some(Ok(v)),
            Outcome::Panicked(msg) => Some(Err(JoinError::Panicked(msg.into()))),
            Outcome::Dropped => {
                slot.set(Outcome::Dropped);
                Some(Err(JoinError::Dropped))
            }
            Outcome::Taken => Some(Err(JoinError::AlreadyJoined)),
        };
        if let Some(result) = ended {
            this.leaf.done();
            return Poll::Ready(result);
        }
        match this.leaf.trap(
            cx,
            Trap::Join {
                task: this.handle.id,
            },
        ) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(JoinError::Interrupted(e))),
        }
    }
}

/// The id of the running task.
///
/// # Examples
///
/// ```
/// trapline::run(async {
///     let me = trapline::current()?;
///     let child = trapline::spawn(async { trapline::current() })?;
///     assert_ne!(child.join().await??, me);
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn current() -> Result<TaskId, TrapError> {
    trapline_traps::current()
}

/// Steps aside: the task goes to the back of the ready queue and runs again
/// after the kernel has looked at I/O and timers. A cancellation point.
///
/// # Examples
///
/// ```
/// trapline::run(async {
///     trapline::yield_now().await?;
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn yield_now() -> YieldNow {
    YieldNow {
        yielded: false,
        leaf: Leaf::new(),
    }
}

/// The future of [`yield_now`].
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// trapline::run(async {
///     let ran = Rc::new(Cell::new(false));
///     let flag = ran.clone();
///     trapline::spawn(async move { flag.set(true) })?;
///     trapline::yield_now().await?; // the spawned task runs first
///     assert!(ran.get());
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
    leaf: Leaf,
}

impl Future for YieldNow {
    type Output = Result<(), TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.yielded {
            this.leaf.done_after_yield();
            return Poll::Ready(Ok(()));
        }
        match this.leaf.trap(cx, Trap::Yield) {
            Ok(()) => {
                this.yielded = true;
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sleeping task's slot is one 48-byte block of the allocator: `Rc`'s
    /// two counts and a 24-byte outcome, no borrow flag.
    #[test]
    fn the_slot_of_a_sleep_is_40_bytes() {
        type SleepSlot = Cell<Outcome<Result<(), TrapError>>>;
        assert_eq!(std::mem::size_of::<SleepSlot>(), 24);
        assert_eq!(std::mem::size_of::<Cell<Outcome<()>>>(), 24);
    }
}
