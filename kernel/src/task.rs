//! A task as the kernel keeps it, and the parks it holds.
//!
//! A *park* is one leaf's blocking request, accepted: the condition the task
//! waits under (`On`), the leaf it belongs to (`seq`), the waker to wake when
//! it fires, and the source line of the await. Every park knows its undo (see
//! `State::undo`), like Curio's `cancel_func`.

use std::fmt;
use std::os::fd::RawFd;
use std::panic::Location;
use std::task::Waker;
use std::time::Instant;

use trapline_traps::{Inbox, QueueId, TaskFuture, TaskId, TimeoutId, Trap};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    /// In the ready queue.
    Ready,
    /// Being polled; `woken` if something made it runnable meanwhile.
    Running { woken: bool },
    /// Parked, or waiting on a foreign waker.
    Waiting,
}

/// The condition a park waits under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    Sleep(Instant),
    Read(RawFd),
    Write(RawFd),
    Sched(QueueId),
    Join(TaskId),
    FutureWait,
}

impl On {
    /// The condition a blocking trap parks under; `None` for traps that park nothing.
    pub(crate) fn of(trap: &Trap) -> Option<On> {
        Some(match *trap {
            Trap::Sleep { deadline } => On::Sleep(deadline),
            Trap::ReadWait { fd } | Trap::ReadDrained { fd } => On::Read(fd),
            Trap::WriteWait { fd } => On::Write(fd),
            Trap::SchedWait { queue } => On::Sched(queue),
            Trap::Join { task } => On::Join(task),
            Trap::FutureWait => On::FutureWait,
            _ => return None,
        })
    }
}

impl On {
    /// The blocking trap that parks under this condition.
    pub(crate) fn trap(self) -> Trap {
        match self {
            On::Sleep(deadline) => Trap::Sleep { deadline },
            On::Read(fd) => Trap::ReadWait { fd },
            On::Write(fd) => Trap::WriteWait { fd },
            On::Sched(queue) => Trap::SchedWait { queue },
            On::Join(task) => Trap::Join { task },
            On::FutureWait => Trap::FutureWait,
        }
    }

    /// What made this condition hold, for resume lines.
    pub(crate) fn fired(self) -> &'static str {
        match self {
            On::Sleep(_) => "deadline passed",
            On::Read(_) => "readable",
            On::Write(_) => "writable",
            On::Sched(_) => "woken",
            On::Join(_) => "task ended",
            On::FutureWait => "woken",
        }
    }

    /// The condition without its countdown, for resume lines.
    pub(crate) fn resumed(self) -> ResumeLabel {
        ResumeLabel(self)
    }
}

/// How a fired condition is named in a resume line.
pub(crate) struct ResumeLabel(On);

impl fmt::Display for ResumeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            On::Sleep(_) => f.write_str("Sleep"),
            other => fmt::Display::fmt(&other, f),
        }
    }
}

impl fmt::Display for On {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.trap(), f)
    }
}

/// A leaf waiting somewhere: the key every wait structure (fd seat, timer
/// entry, wait queue, joiner list) stores. The task's serial makes it safe
/// against slot reuse; the seq names the leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub task: TaskId,
    pub seq: u64,
}

/// One accepted blocking request.
#[derive(Debug)]
pub(crate) struct Park {
    pub seq: u64,
    pub on: On,
    /// `None` when the leaf trapped under the task's own waker.
    pub waker: Option<Waker>,
    pub location: &'static Location<'static>,
    /// For a sleep, the tie of its timer entry (0 otherwise).
    pub timer: u64,
    /// The innermost timeout scope the leaf trapped in.
    pub scope: Option<TimeoutId>,
}

/// A task.
pub(crate) struct Task {
    pub id: TaskId,
    /// `None` for the main task (its future lives on `run`'s stack) and while polled.
    pub future: Option<TaskFuture>,
    pub state: RunState,
    pub inbox: Inbox,
    pub parks: Vec<Park>,
    pub joiners: Vec<Waiter>,
    pub polls: u64,
}

impl Task {
    pub(crate) fn new(id: TaskId, future: Option<TaskFuture>) -> Task {
        Task {
            id,
            future,
            state: RunState::Ready,
            inbox: Inbox::new(),
            parks: Vec::new(),
            joiners: Vec::new(),
            polls: 0,
        }
    }

    /// Removes and returns the park of leaf `seq`, if the task holds one.
    pub(crate) fn take_park(&mut self, seq: u64) -> Option<Park> {
        let at = self.parks.iter().position(|p| p.seq == seq)?;
        Some(self.parks.swap_remove(at))
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("parks", &self.parks)
            .field("polls", &self.polls)
            .finish_non_exhaustive()
    }
}
