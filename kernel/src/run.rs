//! The loop: one pass at a time, then shutdown.
//!
//! A pass, as in Curio's kernel with its starvation fixes:
//!
//! 1. gather the wakes that arrived (this thread's and other threads');
//! 2. poll mio — with timeout 0 if any task is ready, else until the next
//!    deadline (a timerfd armed for it ends the wait, see `timerfd`). A
//!    virtual clock (see `clock`) polls with timeout 0 instead and, if no
//!    event came, jumps to that deadline;
//! 3. fire the parks whose fd became ready and whose deadline passed, and wake
//!    the foreign wakers those parks were made under;
//! 4. run exactly the tasks that were ready when step 4 began. A task made
//!    ready during the pass waits for the next one, after I/O has been looked
//!    at again, so a task that yields in a loop cannot starve the others.

use std::any::Any;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use log::{debug, error, trace};
use trapline_traps::{Delivery, Handler, TaskId, Trap, TrapError};

use crate::hooks::Ended;
use crate::io::{Ready, BELL};
use crate::task::RunState;
use crate::timerfd::TIMER;
use crate::waker::{self, WakeRef};
use crate::Kernel;

type Panic = Box<dyn Any + Send>;

/// The main future, polled in place on `run`'s stack.
trait MainTask {
    fn poll_main(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// Whether it ended in a panic (for the `terminated` hook).
    fn panicked(&self) -> bool {
        false
    }
}

struct Main<'a, T> {
    future: Pin<&'a mut dyn Future<Output = T>>,
    outcome: Option<Result<T, Panic>>,
}

impl<T> MainTask for Main<'_, T> {
    fn poll_main(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match catch_unwind(AssertUnwindSafe(|| self.future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                self.outcome = Some(Ok(v));
                Poll::Ready(())
            }
            Err(panic) => {
                self.outcome = Some(Err(panic));
                Poll::Ready(())
            }
        }
    }

    fn panicked(&self) -> bool {
        matches!(self.outcome, Some(Err(_)))
    }
}

/// No main task (during shutdown).
struct NoMain;

impl MainTask for NoMain {
    fn poll_main(&mut self, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

fn panic_message(panic: &Panic) -> &str {
    match panic.downcast_ref::<&str>() {
        Some(s) => s,
        None => panic
            .downcast_ref::<String>()
            .map_or("Box<dyn Any>", String::as_str),
    }
}

impl Kernel {
    /// Runs `main` to completion on this thread, with every task it spawns.
    ///
    /// When `main` ends, the tasks still alive are cancelled at their traps
    /// and given the shutdown grace to finish; what is left then is dropped.
    /// Nothing the tasks held (fds, registrations, timers) survives.
    ///
    /// Fails if a kernel is already running on this thread, or if the poller
    /// fails. A panic in `main` is raised again here, after shutdown; a panic
    /// in any other task ends only that task.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_kernel::Kernel;
    ///
    /// let mut kernel = Kernel::new()?;
    /// let refused = kernel.run(async {
    ///     let mut second = Kernel::new().unwrap();
    ///     second.run(async {}).is_err() // one kernel runs per thread at a time
    /// })?;
    /// assert!(refused);
    /// assert_eq!(kernel.run(async { "again" })?, "again", "a kernel runs again once a run ends");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn run<F: Future>(&mut self, main: F) -> io::Result<F::Output> {
        let handler: Rc<dyn Handler> = self.shared.clone();
        let installed = trapline_traps::install(handler)
            .map_err(|e| io::Error::other(format!("trapline::run: {e}")))?;
        let local = waker::enter_local(self.id);
        let current = crate::remote::enter(self.handle());
        let clock = self.shared.state.borrow().clock;
        if clock.is_virtual() {
            trapline_traps::show_times_against(Some(clock.now()));
        }
        let main_id = self.shared.state.borrow_mut().spawn(None);
        debug!(target: "trapline::kernel", "kernel {} run: main is {main_id}", self.id);
        if self.shared.hooks.on() {
            self.shared.hook_created_main(main_id, Location::caller());
        }

        let future = pin!(main);
        let mut main = Main {
            future,
            outcome: None,
        };
        let mut failure = None;
        while main.outcome.is_none() {
            if let Err(e) = self.pass(&mut main, Some(main_id), None) {
                failure = Some(e);
                break;
            }
        }
        if failure.is_some() {
            // The poller failed: the main task cannot go on.
            let _ = self.shared.state.borrow_mut().finish(main_id);
            if self.shared.hooks.on() {
                self.shared.hook_terminated(main_id, Ended::Dropped);
            }
        }
        let shutdown = self.shutdown();
        drop(current);
        if clock.is_virtual() {
            trapline_traps::show_times_against(None);
        }
        drop(local);
        drop(installed);
        if let Some(e) = failure.or(shutdown.err()) {
            return Err(e);
        }
        match main.outcome {
            Some(Ok(v)) => Ok(v),
            Some(Err(panic)) => resume_unwind(panic),
            None => unreachable!("the loop ends only when main has an outcome"),
        }
    }

    /// One pass of the loop; `limit` caps how long it may wait for events.
    fn pass(
        &mut self,
        main: &mut dyn MainTask,
        main_id: Option<TaskId>,
        limit: Option<Instant>,
    ) -> io::Result<()> {
        self.take_injected();
        self.gather_wakes();
        // `wait`: `None` skips the poll; `Some(timeout)` polls for that long.
        let (wait, next, jumps) = {
            let mut st = self.shared.state.borrow_mut();
            st.counters.passes += 1;
            st.compact_timers();
            st.tidy_ready();
            st.queues.sweep();
            if st.ready.is_empty() {
                let next = match (st.next_deadline(), limit) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let now = st.now();
                // A virtual clock only looks at I/O; if nothing happened, it
                // jumps to `next` below instead of waiting for it.
                let jumps = st.clock.is_virtual() && next.is_some();
                let timeout = match self.timer.as_mut() {
                    _ if jumps => Some(Duration::ZERO),
                    // The timerfd runs on the real clock only.
                    Some(timer) if !st.clock.is_virtual() => {
                        let timeout = timer.poll_timeout(next, now);
                        if timeout == Some(Duration::ZERO) {
                            st.counters.timer_spins += 1;
                        }
                        timeout
                    }
                    _ => next.map(|at| at.saturating_duration_since(now)),
                };
                (Some(timeout), next, jumps)
            } else if st.io.registered() == 0 {
                // Tasks are ready and no fd is watched: nothing `epoll_wait`
                // could say matters (wakes from other threads come through
                // their queue, deadlines off the clock). Skip the syscall.
                (None, None, false)
            } else {
                (Some(Some(Duration::ZERO)), None, false)
            }
        };
        let polled = wait.is_some();
        match wait {
            Some(timeout) => self.poll_events(timeout)?,
            None => self.events.clear(),
        }
        if jumps && self.events.is_empty() {
            if let Some(at) = next {
                let mut st = self.shared.state.borrow_mut();
                trace!(target: "trapline::kernel", "virtual clock: idle, jumps {:?}", at.saturating_duration_since(st.now()));
                st.clock.advance_to(at);
            }
        }
        {
            let mut st = self.shared.state.borrow_mut();
            for event in self.events.iter() {
                if event.token() == BELL {
                    continue; // drained by gather_wakes
                }
                if event.token() == TIMER {
                    if let Some(timer) = self.timer.as_mut() {
                        timer.fired(matches!(wait, Some(None)));
                    }
                    continue; // the expiry below looks at the clock
                }
                st.io_event(event.token(), Ready::of(event));
            }
            st.expire_due();
        }
        // New wakes since the pass began come with events (a wake from
        // another thread rings the bell) or from the foreign wakers woken
        // here; with neither, gathering again would find nothing.
        if self.shared.wake_foreign() || polled {
            self.gather_wakes();
        }

        let runnable = self.shared.state.borrow().ready.len();
        for _ in 0..runnable {
            let next = self.shared.state.borrow_mut().ready.pop_front();
            let Some(id) = next else { break };
            self.run_task(id, main, main_id);
        }
        Ok(())
    }

    /// Waits for I/O events (or looks, with a zero timeout).
    fn poll_events(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => Ok(()),
            // A signal arrived; the pass goes on with no events.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Moves the wakes that arrived through task wakers into the ready queue.
    fn gather_wakes(&mut self) {
        waker::drain_local(&mut self.wakes);
        self.remote.drain(&mut self.wakes);
        if self.wakes.is_empty() {
            return;
        }
        let mut st = self.shared.state.borrow_mut();
        for wake in self.wakes.drain(..) {
            if wake.kernel == self.id {
                st.wake(wake);
            }
        }
    }

    /// Polls task `id` once and parks it under what its leaves posted.
    fn run_task(&mut self, id: TaskId, main: &mut dyn MainTask, main_id: Option<TaskId>) {
        let hooks = self.shared.hooks.on();
        if hooks {
            self.shared.hook_running(id);
        }
        let (mut future, inbox, cancel_before, unparked) = {
            let mut st = self.shared.state.borrow_mut();
            let Some(task) = st.task(id) else { return };
            task.state = RunState::Running { woken: false };
            let cancel_before = task.inbox.cancel_state();
            let taken = (
                task.future.take(),
                std::mem::take(&mut task.inbox),
                cancel_before,
                task.parks.is_empty(),
            );
            st.counters.polls += 1;
            taken
        };
        trace!(target: "trapline::kernel", "run {id}");
        // A task without parks (the common case: its leaf was resumed) lets
        // its leaves complete without calling back into the kernel.
        if unparked {
            trapline_traps::enter_unparked(id, inbox);
        } else {
            trapline_traps::enter(id, inbox);
        }
        let waker = waker::task_waker(WakeRef::new(self.id, id));
        let mut cx = Context::from_waker(&waker);
        let polled = if Some(id) == main_id {
            Ok(main.poll_main(&mut cx))
        } else {
            match future.as_mut() {
                Some(f) => catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(&mut cx))),
                None => Ok(Poll::Ready(())),
            }
        };
        let inbox = trapline_traps::leave(&mut self.posts);
        let yielded = match polled {
            Ok(Poll::Pending) if hooks => self
                .posts
                .iter()
                .find_map(|p| matches!(p.trap, Trap::Yield).then_some(p.location)),
            _ => None,
        };
        let ended = match polled {
            _ if !hooks => None, // only the hooks ask
            Ok(Poll::Pending) => None,
            Ok(Poll::Ready(())) if Some(id) == main_id && main.panicked() => Some(Ended::Panicked),
            Ok(Poll::Ready(())) => Some(Ended::Completed),
            Err(_) => Some(Ended::Panicked),
        };

        let leftover = {
            let mut st = self.shared.state.borrow_mut();
            match polled {
                Ok(Poll::Pending) => {
                    let mut inbox = inbox;
                    // A task that cancelled itself during this poll, then
                    // parked: deliver at those parks now, as for any cancel.
                    // (Without parks it waits on a foreign waker, and the
                    // cancel waits for its next trap.)
                    let cancelled_now =
                        cancel_before == Delivery::None && inbox.cancel_state() != Delivery::None;
                    // A poll that hit the delivery limit (a loop catching
                    // interrupts): resume it, delivery goes on next poll.
                    let held_back = inbox.take_throttled();
                    if let Some(task) = st.task(id) {
                        task.inbox = inbox;
                        task.future = future.take();
                        let woken = task.state == RunState::Running { woken: true };
                        if woken {
                            task.state = RunState::Ready;
                            st.ready.push_back(id);
                        } else {
                            task.state = RunState::Waiting;
                        }
                    }
                    for post in self.posts.drain(..) {
                        st.take_post(id, post, &waker);
                    }
                    if cancelled_now && st.task(id).is_some_and(|t| !t.parks.is_empty()) {
                        st.interrupt(id, TrapError::Cancelled);
                    } else if let Some(err) = held_back {
                        st.interrupt(id, err);
                    }
                    None
                }
                Ok(Poll::Ready(())) => {
                    debug!(target: "trapline::kernel", "{id} exit");
                    st.finish(id)
                }
                Err(panic) => {
                    error!(target: "trapline::kernel", "{id} panicked: {}", panic_message(&panic));
                    st.finish(id)
                }
            }
        };
        // User code (destructors, wakers' drops) runs only now that the state
        // is released. Posts are left only by a task that has ended.
        self.posts.clear();
        drop_quietly(future);
        drop_quietly(leftover);
        self.shared.wake_foreign();
        if hooks {
            match ended {
                None => self.shared.hook_suspended(id, yielded),
                Some(how) => self.shared.hook_terminated(id, how),
            }
        }
    }

    /// Cancels what is left, lets it clean up within the grace, drops the rest.
    fn shutdown(&mut self) -> io::Result<()> {
        // A grace too long to represent means: wait for every task.
        // The grace is counted on the kernel's clock. A virtual clock stands
        // still while a task spins, so the grace is bounded in real time too.
        let start = self.shared.state.borrow().now();
        let limit = start.checked_add(self.grace);
        let real_limit = Instant::now().checked_add(self.grace);
        loop {
            let left: Vec<TaskId> = {
                let st = self.shared.state.borrow();
                st.tasks.iter().map(|(slot, t)| t.id(slot)).collect()
            };
            if left.is_empty() {
                break;
            }
            debug!(target: "trapline::kernel", "shutdown: {} task(s) left, cancelling", left.len());
            {
                let mut st = self.shared.state.borrow_mut();
                for id in left {
                    st.cancel(id);
                }
            }
            self.shared.wake_foreign();
            let now = self.shared.state.borrow().now();
            if limit.is_some_and(|limit| now >= limit)
                || real_limit.is_some_and(|limit| Instant::now() >= limit)
            {
                break;
            }
            self.pass(&mut NoMain, None, limit)?;
        }
        self.shared.state.borrow_mut().closing = true;
        loop {
            let next = {
                let st = self.shared.state.borrow();
                st.tasks.iter().next().map(|(slot, t)| t.id(slot))
            };
            let Some(id) = next else { break };
            debug!(target: "trapline::kernel", "shutdown: dropping {id}");
            let future = self.shared.state.borrow_mut().finish(id);
            drop_quietly(future);
            self.shared.wake_foreign();
            if self.shared.hooks.on() {
                self.shared.hook_terminated(id, Ended::Dropped);
            }
        }
        let mut st = self.shared.state.borrow_mut();
        st.ready.clear();
        st.next_deadline();
        st.closing = false;
        let st = &mut *st;
        // What outlives the run (a socket or a `timeout_after` returned from
        // it, or leaked) can no longer tell the kernel when it goes away:
        // release it here, and count it.
        let fds = st.io.release_all(&st.registry);
        let timeouts = st.timeouts.len();
        st.timeouts.clear();
        st.timers.compact(|_| false);
        st.counters.released_at_exit = fds + timeouts;
        if st.counters.released_at_exit > 0 {
            debug!(target: "trapline::kernel", "{fds} fd registration(s) and {timeouts} timeout(s) outlive the run: released");
        }
        Ok(())
    }
}

/// Runs user code the kernel calls outside any task (a destructor, a
/// foreign waker): a panic in it is logged, not raised through the loop.
pub(crate) fn contain(what: &str, f: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
        error!(target: "trapline::kernel", "{what} panicked: {}", panic_message(&panic));
    }
}

/// Drops a task's future; a panicking destructor is logged, not raised.
#[inline]
fn drop_quietly<T>(value: Option<T>) {
    if value.is_some() {
        contain("a task's destructor", || drop(value));
    }
}
