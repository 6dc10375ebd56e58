//! The kernel's state and the four things it does to tasks: park, fire
//! (resume), undo, finish.
//!
//! Discussion: this state lives in a `RefCell` and is never borrowed while
//! user code runs. Polling a task takes its future out of the slab first;
//! waking a foreign waker is deferred to `foreign_wakes`, drained after the
//! borrow ends; a finished task's future is handed back to be dropped outside.
//! User code can therefore always re-enter the kernel through a trap.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;
use std::time::Instant;

use log::trace;
use mio::{Registry, Token};
use slab::Slab;
use trapline_traps::{Post, QueueId, TaskFuture, TaskId, TimeoutId, Trap, TrapError};

use crate::clock::Clock;
use crate::interrupts::ScopeRef;
use crate::io::{Dir, IoTable, Ready};
use crate::queues::WaitQueues;
use crate::task::{On, Park, SlotPlusOne, Task, Waiter};
use crate::timers::{Alarm, Timers};
use crate::waker::{WakeRef, MAX_TASKS};

/// A `SetTimeout` in force.
#[derive(Debug)]
pub(crate) struct Timeout {
    pub id: TimeoutId,
    pub task: TaskId,
    /// The timeout whose scope it was set in, if any.
    pub parent: Option<TimeoutId>,
    pub expired: bool,
    /// Its deadline and the tie of its timer entry.
    pub timer: (Instant, u32),
}

/// Serial numbers for the ids a kernel hands out (tasks, timeouts), unique
/// in the process, not just in the kernel: an id kept from one kernel never
/// names a task or a timeout of another one on the same thread. Each kernel
/// draws blocks of serials from a process-wide counter; the first kernel of a
/// process starts at 1.
#[derive(Debug, Default)]
pub(crate) struct Serials {
    next: u64,
    end: u64,
}

impl Serials {
    const BLOCK: u64 = 1 << 16;

    pub(crate) fn next(&mut self) -> u64 {
        static BLOCKS: AtomicU64 = AtomicU64::new(0);
        if self.next == self.end {
            let base = BLOCKS.fetch_add(Serials::BLOCK, Ordering::Relaxed);
            self.next = base.max(1);
            self.end = base.wrapping_add(Serials::BLOCK);
        }
        let serial = self.next;
        self.next = self.next.wrapping_add(1);
        serial
    }
}

/// Counters since the kernel was made.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub passes: u64,
    pub timer_spins: u64,
    pub polls: u64,
    pub events: u64,
    pub wakeups: u64,
    pub spawned: u64,
    pub released_at_exit: usize,
}

pub(crate) struct State {
    pub registry: Registry,
    pub tasks: Slab<Task>,
    /// The joiners after the first of each task joined by more than one,
    /// by the joined task's slot, oldest first (see `joiners`).
    pub more_joiners: HashMap<u32, Vec<SlotPlusOne>>,
    pub ready: VecDeque<TaskId>,
    pub io: IoTable,
    pub timers: Timers,
    pub timeouts: Slab<Timeout>,
    pub queues: WaitQueues,
    /// Foreign wakers to wake once the borrow of the state ends.
    pub foreign_wakes: Vec<Waker>,
    /// Foreign wakers to drop once the borrow ends: a waker's `Drop` is user
    /// code too (it may own the last reference to a socket).
    pub graveyard: Vec<Waker>,
    pub counters: Counters,
    /// Set once shutdown starts dropping tasks: no more spawns.
    pub closing: bool,
    pub serials: Serials,
    pub clock: Clock,
}

impl State {
    pub(crate) fn new(registry: Registry, clock: Clock) -> State {
        State {
            registry,
            tasks: Slab::new(),
            more_joiners: HashMap::new(),
            ready: VecDeque::new(),
            io: IoTable::default(),
            timers: Timers::default(),
            timeouts: Slab::new(),
            queues: WaitQueues::default(),
            foreign_wakes: Vec::new(),
            graveyard: Vec::new(),
            counters: Counters::default(),
            closing: false,
            serials: Serials::default(),
            clock,
        }
    }

    /// The kernel's clock.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The live task `id`, if it is still the occupant of its slot.
    pub(crate) fn task(&mut self, id: TaskId) -> Option<&mut Task> {
        self.tasks.get_mut(id.index() as usize).filter(|t| t.is(id))
    }

    /// Whether a task can be added now.
    pub(crate) fn can_spawn(&self) -> Result<(), TrapError> {
        if self.closing {
            return Err(TrapError::Unsupported("the kernel is shutting down"));
        }
        if self.tasks.vacant_key() >= MAX_TASKS {
            return Err(TrapError::Unsupported(
                "too many tasks (2^24) in one kernel",
            ));
        }
        Ok(())
    }

    /// Adds a task, ready to run; the caller checked [`State::can_spawn`].
    /// The main task has no boxed future.
    pub(crate) fn spawn(&mut self, future: Option<TaskFuture>) -> TaskId {
        let entry = self.tasks.vacant_entry();
        let id = TaskId::new(entry.key() as u32, self.serials.next());
        entry.insert(Task::new(id, future));
        self.ready.push_back(id);
        self.counters.spawned += 1;
        id
    }

    /// Gives back the memory of a ready queue that a burst grew (a million
    /// tasks spawned at once leave a 16 MB queue behind), once it has
    /// drained. Called at the start of every pass.
    pub(crate) fn tidy_ready(&mut self) {
        /// What an empty ready queue keeps: room for a busy kernel's usual
        /// bursts, so that it does not shrink and grow again every pass.
        const KEPT: usize = 4096;
        if self.ready.capacity() > KEPT && self.ready.len() <= KEPT / 2 {
            self.ready.shrink_to(KEPT);
        }
    }

    /// Makes task `id` runnable (a wake, a fired park).
    pub(crate) fn schedule(&mut self, id: TaskId) {
        if self.task(id).is_some_and(|t| t.make_runnable()) {
            self.ready.push_back(id);
        }
    }

    /// A wake through a task's `Waker`.
    pub(crate) fn wake(&mut self, wake: WakeRef) {
        self.counters.wakeups += 1;
        let slot = wake.index as usize;
        let Some(task) = self.tasks.get_mut(slot) else {
            return;
        };
        let id = task.id(slot);
        // As `schedule`, with the task at hand.
        if wake.names(id) && task.make_runnable() {
            self.ready.push_back(id);
        }
    }

    /// Takes a request task `id`'s leaf posted during its poll; `own` is
    /// the task's own waker, the one it was polled with. A waker that is
    /// the task's own is not kept: the task itself is resumed.
    ///
    /// A yield parks nothing: under the task's own waker the task goes
    /// straight back to the ready queue, under a foreign one (a combinator's)
    /// that waker is woken. Every blocking trap parks (`park`).
    #[inline]
    pub(crate) fn take_post(&mut self, id: TaskId, post: Post, own: &Waker) {
        let foreign = !post.waker.will_wake(own);
        if matches!(post.trap, Trap::Yield) {
            trace!(target: "trapline::trap", "task {} trap Yield at {}", id.serial(), post.location);
            self.resume(id, foreign.then_some(post.waker));
        } else {
            self.park(id, post, foreign);
        }
    }

    /// Parks task `id` under a blocking request its leaf posted; `foreign`
    /// says whether to keep the post's waker (see `take_post`).
    fn park(&mut self, id: TaskId, post: Post, foreign: bool) {
        let Post {
            seq,
            trap,
            waker,
            location,
            scope,
        } = post;
        let untried = matches!(trap, Trap::ReadDrained { .. });
        let waker = foreign.then_some(waker);
        let Some(mut on) = On::of(&trap) else {
            return; // no other trap is posted
        };
        let Some(task) = self.task(id) else {
            return self.bury(waker);
        };
        if let Some(park) = task.parks.find_mut(|p| p.seq == seq) {
            if park.on.waits_as(on) {
                // The same leaf trapped again on the same condition (a spurious
                // poll): the park stands; only its waker, and the timeout scope
                // it is polled in, may have changed.
                park.scope = scope.map(ScopeRef::of);
                let old = std::mem::replace(&mut park.waker, waker);
                return self.bury(old);
            }
            if let Some(old) = task.take_park(seq) {
                self.undo(id, &old);
                self.bury(old.waker);
            }
        }
        trace!(target: "trapline::trap", "task {} trap {trap} at {location}", id.serial());
        let waiter = Waiter::new(id, seq);
        let parked = match on {
            On::Sleep { deadline, .. } if deadline <= self.now() => Err(None),
            On::Sleep { deadline, .. } => {
                let tie = self.timers.push(deadline, Alarm::Sleep(waiter));
                on = On::Sleep { deadline, tie };
                Ok(())
            }
            On::Read(fd) if untried => match self.io.wait_untried(&self.registry, fd, waiter) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    trace!(target: "trapline::trap", "task {} resume {trap}: readable since the last read (trapped at {location})", id.serial());
                    Err(None)
                }
                Err(err) => Err(Some(err)),
            },
            On::Read(fd) => self
                .io
                .wait(&self.registry, fd, Dir::Read, waiter)
                .map_err(Some),
            On::Write(fd) => self
                .io
                .wait(&self.registry, fd, Dir::Write, waiter)
                .map_err(Some),
            On::Sched(queue) => {
                self.queues.push(queue, waiter);
                Ok(())
            }
            On::Join(target) if target == id => {
                Err(Some(TrapError::Unsupported("a task cannot join itself")))
            }
            On::Join(target) => match self.add_joiner(target, id) {
                true => Ok(()),
                false => Err(None),
            },
            On::FutureWait => Ok(()),
        };
        match parked {
            Ok(()) => {
                let park = Park {
                    seq,
                    on,
                    waker,
                    location,
                    scope: scope.map(ScopeRef::of),
                };
                match self.task(id) {
                    Some(task) => task.parks.push(park),
                    None => self.bury(park.waker),
                }
            }
            // The condition already holds: resume at once.
            Err(None) => self.resume(id, waker),
            // The kernel refuses: the leaf learns why when it traps again.
            Err(Some(err)) => {
                trace!(target: "trapline::trap", "task {} refused {on}: {err}", id.serial());
                if let Some(task) = self.task(id) {
                    task.inbox.answer(seq, err);
                }
                self.resume(id, waker);
            }
        }
    }

    /// Keeps a waker to drop after the borrow of the state ends.
    pub(crate) fn bury(&mut self, waker: Option<Waker>) {
        if let Some(w) = waker {
            self.graveyard.push(w);
        }
    }

    /// Resumes a task through the waker its leaf trapped under.
    pub(crate) fn resume(&mut self, id: TaskId, waker: Option<Waker>) {
        match waker {
            None => self.schedule(id),
            Some(w) => self.foreign_wakes.push(w),
        }
    }

    /// The condition of `waiter`'s park holds: release the park and resume.
    /// A waiter whose leaf is gone (the task in its slot holds no park with
    /// its seq) resumes nothing.
    pub(crate) fn fire(&mut self, waiter: Waiter) {
        let slot = waiter.slot() as usize;
        let Some(task) = self.tasks.get_mut(slot) else {
            return;
        };
        let Some(park) = task.take_park(waiter.seq()) else {
            return;
        };
        trace!(target: "trapline::trap", "task {} resume {}: {} (trapped at {})", task.serial, park.on.resumed(), park.on.fired(), park.location);
        // The fired condition's own record is already gone (the seat, queue
        // slot or joiner entry was taken to find this waiter); a sleep's entry
        // was popped by the caller. As `resume`, with the task at hand.
        match park.waker {
            None => {
                if task.make_runnable() {
                    self.ready.push_back(task.id(slot));
                }
            }
            Some(w) => self.foreign_wakes.push(w),
        }
    }

    /// Takes back what a park holds in the wait structures.
    pub(crate) fn undo(&mut self, id: TaskId, park: &Park) {
        let waiter = Waiter::new(id, park.seq);
        match park.on {
            On::Sleep { .. } => self.timers.went_stale(),
            On::Read(fd) => self.io.leave(fd, Dir::Read, waiter),
            On::Write(fd) => self.io.leave(fd, Dir::Write, waiter),
            On::Sched(queue) => self.queues.remove(queue, waiter),
            On::Join(target) => self.remove_joiner(target, id),
            On::FutureWait => {}
        }
    }

    /// A leaf completed or was dropped: undo its park, if it has one.
    ///
    /// The leaf names the slot of its task, not the task: a later occupant
    /// of the slot holds no park, and no answer, under the leaf's sequence
    /// number (unique in the process), so a stale ticket finds nothing.
    pub(crate) fn unpost(&mut self, slot: u32, seq: u64) {
        let Some(task) = self.tasks.get_mut(slot as usize) else {
            return;
        };
        task.inbox.scrub(seq);
        let Some(park) = task.take_park(seq) else {
            return;
        };
        let id = task.id(slot as usize);
        self.undo(id, &park);
        self.bury(park.waker);
    }

    /// Removes task `id` for good; returns its future to drop outside the borrow.
    pub(crate) fn finish(&mut self, id: TaskId) -> Option<TaskFuture> {
        self.task(id)?;
        let task = self.tasks.remove(id.index() as usize);
        for park in task.parks {
            self.undo(id, &park);
            self.bury(park.waker);
        }
        if let Some(first) = task.joiner {
            self.fire_joiners(id, first, task.more_joiners);
        }
        task.future
    }

    /// An fd event from mio.
    pub(crate) fn io_event(&mut self, token: Token, ready: Ready) {
        self.counters.events += 1;
        for waiter in self.io.event(token, ready).into_iter().flatten() {
            self.fire(waiter);
        }
    }

    /// `IoRelease`: the fd is about to close.
    pub(crate) fn io_release(&mut self, fd: std::os::fd::RawFd) {
        for waiter in self.io.release(&self.registry, fd).into_iter().flatten() {
            self.fire(waiter);
        }
    }

    /// `SchedWake`: wakes up to `n` waiters of `queue`, oldest first.
    pub(crate) fn sched_wake(&mut self, queue: QueueId, n: usize) -> usize {
        let mut woken = 0;
        while woken < n {
            let Some(waiter) = self.queues.pop(queue) else {
                break;
            };
            self.fire(waiter);
            woken += 1;
        }
        woken
    }
}

/// What the kernel's unit tests build states, tasks and parks with.
#[cfg(test)]
pub(crate) mod testing {
    use std::panic::Location;

    use super::*;
    use crate::interrupts::ScopeRef;
    use crate::task::{On, Park, RunState};

    /// A state on the real clock, with a registry of its own.
    pub(crate) fn state() -> State {
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        State::new(registry, Clock::Real)
    }

    /// A task waiting (not in the ready queue), with nothing parked.
    pub(crate) fn waiting_task(st: &mut State) -> TaskId {
        let id = st.spawn(None);
        st.ready.clear();
        st.task(id).unwrap().state = RunState::Waiting;
        id
    }

    /// Gives task `id` the park of leaf `seq` under `on`, trapped in
    /// `scope`, as `State::park` records it; the wait structures behind it
    /// (timer entry, joiner list) are the caller's to arrange.
    pub(crate) fn push_park(st: &mut State, id: TaskId, seq: u64, on: On, scope: Option<ScopeRef>) {
        st.task(id).unwrap().parks.push(Park {
            seq,
            on,
            waker: None,
            location: Location::caller(),
            scope,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::testing::state;

    /// A burst of spawns grows the ready queue; once drained, it shrinks
    /// back to what a busy kernel keeps, and not before.
    #[test]
    fn a_drained_ready_queue_gives_its_memory_back() {
        let mut st = state();
        for _ in 0..10_000 {
            st.spawn(None);
        }
        st.tidy_ready();
        assert_eq!(st.ready.len(), 10_000);
        assert!(st.ready.capacity() >= 10_000, "not while it holds them");
        st.ready.drain(..7_000);
        st.tidy_ready();
        assert!(st.ready.capacity() >= 10_000, "3,000 left is still a burst");
        st.ready.drain(..);
        st.tidy_ready();
        assert!(st.ready.capacity() < 10_000);
        assert!(st.ready.capacity() >= 2_048, "room kept for the next burst");
    }
}
