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
            Trap::ReadWait { fd } => On::Read(fd),
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

/// A task's parks.
///
/// Discussion: a task almost always holds one park or none (a leaf waits,
/// is resumed, completes), and a million sleeping tasks each hold one. So
/// the first park lives in the task record itself; only a task waiting under
/// several conditions at once (a `join!` of two reads) spills the others
/// into a `Vec`. Taking a park behaves as `Vec::swap_remove` on the whole
/// list (the last park takes the place of the one taken), so the order in
/// which parks are listed (trace lines, probes) is what a plain `Vec` gave.
#[derive(Debug, Default)]
pub(crate) struct Parks {
    first: Option<Park>,
    /// The parks after the first one.
    ///
    /// # Invariant
    ///
    /// Empty whenever `first` is `None`.
    rest: Vec<Park>,
}

impl Parks {
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Park> {
        self.into_iter()
    }

    /// The park of leaf `seq`, if the task holds one.
    pub(crate) fn find_mut(&mut self, seq: u64) -> Option<&mut Park> {
        self.first
            .iter_mut()
            .chain(&mut self.rest)
            .find(|p| p.seq == seq)
    }

    pub(crate) fn push(&mut self, park: Park) {
        match self.first {
            None => self.first = Some(park),
            Some(_) => self.rest.push(park),
        }
    }

    /// Removes and returns the park of leaf `seq`, if the task holds one.
    pub(crate) fn take(&mut self, seq: u64) -> Option<Park> {
        if self.first.as_ref()?.seq == seq {
            let last = self.rest.pop();
            return std::mem::replace(&mut self.first, last);
        }
        let at = self.rest.iter().position(|p| p.seq == seq)?;
        Some(self.rest.swap_remove(at))
    }
}

impl IntoIterator for Parks {
    type Item = Park;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Park>, std::vec::IntoIter<Park>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

impl<'a> IntoIterator for &'a Parks {
    type Item = &'a Park;
    type IntoIter = std::iter::Chain<std::option::Iter<'a, Park>, std::slice::Iter<'a, Park>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.iter().chain(&self.rest)
    }
}

/// A task.
pub(crate) struct Task {
    pub id: TaskId,
    /// `None` for the main task (its future lives on `run`'s stack) and while polled.
    pub future: Option<TaskFuture>,
    pub state: RunState,
    pub inbox: Inbox,
    pub parks: Parks,
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
            parks: Parks::default(),
            joiners: Vec::new(),
            polls: 0,
        }
    }

    /// Removes and returns the park of leaf `seq`, if the task holds one.
    pub(crate) fn take_park(&mut self, seq: u64) -> Option<Park> {
        self.parks.take(seq)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn park(seq: u64) -> Park {
        Park {
            seq,
            on: On::FutureWait,
            waker: None,
            location: Location::caller(),
            timer: 0,
            scope: None,
        }
    }

    fn seqs(parks: &Parks) -> Vec<u64> {
        parks.iter().map(|p| p.seq).collect()
    }

    /// The first park lives inline; taking parks keeps the order a `Vec`
    /// with `swap_remove` would, so trace lines list parks as before.
    #[test]
    fn parks_take_like_swap_remove() {
        let mut parks = Parks::default();
        assert!(parks.is_empty());
        for seq in 1..=4 {
            parks.push(park(seq));
        }
        assert_eq!((parks.len(), seqs(&parks)), (4, vec![1, 2, 3, 4]));
        let mut model: Vec<u64> = vec![1, 2, 3, 4];
        for seq in [1, 3, 9, 2, 4] {
            let expected = model
                .iter()
                .position(|s| *s == seq)
                .map(|at| model.swap_remove(at));
            assert_eq!(parks.take(seq).map(|p| p.seq), expected);
            assert_eq!(seqs(&parks), model, "after taking {seq}");
        }
        assert!(parks.is_empty());
        assert!(parks.rest.capacity() > 0, "kept for the next spill");
        parks.push(park(5));
        assert!(parks.rest.is_empty(), "a lone park is inline");
        assert_eq!(parks.find_mut(5).map(|p| p.seq), Some(5));
        assert!(parks.find_mut(6).is_none());
        assert_eq!(parks.into_iter().map(|p| p.seq).collect::<Vec<_>>(), [5]);
    }
}
