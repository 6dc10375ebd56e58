//! A task as the kernel keeps it, and the parks it holds.
//!
//! A *park* is one leaf's blocking request, accepted: the condition the task
//! waits under (`On`), the leaf it belongs to (`seq`), the waker to wake when
//! it fires, and the source line of the await. Every park knows its undo (see
//! `State::undo`), like Curio's `cancel_func`.

use std::fmt;
use std::num::NonZeroU32;
use std::os::fd::RawFd;
use std::panic::Location;
use std::task::Waker;
use std::time::Instant;

use crate::interrupts::ScopeRef;
use trapline_traps::{Inbox, QueueId, TaskFuture, TaskId, Trap};

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
///
/// Discussion: a sleep's park keeps the tie of its timer entry here, in
/// the sleep's variant, rather than in a field of every park. That costs
/// no room: the variant is the largest (24 bytes), and the enum's tag lives
/// in the deadline's nanoseconds field, where values past a second are
/// free, so a park is 64 bytes instead of 72.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    /// `tie` is the tie of its timer entry; 0 until the entry is pushed.
    Sleep {
        deadline: Instant,
        tie: u32,
    },
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
            Trap::Sleep { deadline } => On::Sleep { deadline, tie: 0 },
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
            On::Sleep { deadline, .. } => Trap::Sleep { deadline },
            On::Read(fd) => Trap::ReadWait { fd },
            On::Write(fd) => Trap::WriteWait { fd },
            On::Sched(queue) => Trap::SchedWait { queue },
            On::Join(task) => Trap::Join { task },
            On::FutureWait => Trap::FutureWait,
        }
    }

    /// Whether a park under `self` waits for what `other` asks, a sleep's
    /// tie aside.
    pub(crate) fn waits_as(self, other: On) -> bool {
        match (self, other) {
            (On::Sleep { deadline: a, .. }, On::Sleep { deadline: b, .. }) => a == b,
            _ => self == other,
        }
    }

    /// The deadline and tie of a sleep's timer entry.
    pub(crate) fn timer(self) -> Option<(Instant, u32)> {
        match self {
            On::Sleep { deadline, tie } => Some((deadline, tie)),
            _ => None,
        }
    }

    /// What made this condition hold, for resume lines.
    pub(crate) fn fired(self) -> &'static str {
        match self {
            On::Sleep { .. } => "deadline passed",
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
            On::Sleep { .. } => f.write_str("Sleep"),
            other => fmt::Display::fmt(&other, f),
        }
    }
}

impl fmt::Display for On {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.trap(), f)
    }
}

/// A slab slot kept plus one, so that an absent one (an `Option` of it)
/// takes no room of its own: a waiter's task, a joiner, a park's timeout
/// scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SlotPlusOne(NonZeroU32);

impl SlotPlusOne {
    pub(crate) fn new(slot: u32) -> SlotPlusOne {
        // Task slots stay below 2^24 (`MAX_TASKS`), timeout slots far below
        // 2^32 - 1 (each holds a record in memory): one more fits, and
        // saturating keeps it total.
        SlotPlusOne(NonZeroU32::MIN.saturating_add(slot))
    }

    pub(crate) fn get(self) -> u32 {
        self.0.get() - 1
    }
}

/// A leaf waiting somewhere: the key the wait structures (fd seats, wait
/// queues) store, the slot of its task and its sequence number.
///
/// Discussion: the seq names the leaf, and is its generation too: leaves
/// are numbered per thread, in blocks drawn for the process, so no two in
/// the process share a seq, and a waiter that outlived its task matches no
/// park of a later occupant of the slot (`State::fire` then does nothing).
/// So a waiter needs no task serial, and with its slot kept plus one (an
/// empty seat needs no tag) it is 16 bytes: an fd-table entry, with its
/// two seats, is 40.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiter {
    seq: u64,
    slot: SlotPlusOne,
}

impl Waiter {
    /// Leaf `seq` of task `task`.
    pub(crate) fn new(task: TaskId, seq: u64) -> Waiter {
        Waiter::at(task.index(), seq)
    }

    /// Leaf `seq` of the task in slot `slot`.
    pub(crate) fn at(slot: u32, seq: u64) -> Waiter {
        Waiter {
            seq,
            slot: SlotPlusOne::new(slot),
        }
    }

    /// The slot of its task.
    pub(crate) fn slot(self) -> u32 {
        self.slot.get()
    }

    /// The leaf's sequence number.
    pub(crate) fn seq(self) -> u64 {
        self.seq
    }
}

/// One accepted blocking request.
#[derive(Debug)]
pub(crate) struct Park {
    pub seq: u64,
    pub on: On,
    /// `None` when the leaf trapped under the task's own waker.
    pub waker: Option<Waker>,
    pub location: &'static Location<'static>,
    /// The innermost timeout scope the leaf trapped in (see `interrupts`).
    pub scope: Option<ScopeRef>,
}

/// A short list: a task's parks.
///
/// Discussion: a task almost always holds one park or none (a leaf waits,
/// is resumed, completes), and a million sleeping tasks each hold one. So
/// the first item lives in the task record itself, and only a second one
/// (a `join!` of two reads) spills into a boxed `Vec`, kept once made.
/// Taking an item behaves as `Vec::swap_remove` on the whole list (the last
/// item takes the place of the one taken), so the order in which parks are
/// listed and fired (trace lines, probes, the order of resumes) is what a
/// plain `Vec` gave.
#[derive(Debug)]
pub(crate) struct Few<T> {
    first: Option<T>,
    /// The items after the first one.
    ///
    /// # Invariant
    ///
    /// Empty (or `None`) whenever `first` is `None`.
    // Boxed on purpose: one word in every task record instead of a `Vec`'s
    // three, for a spill that almost never happens.
    #[allow(clippy::box_collection)]
    rest: Option<Box<Vec<T>>>,
}

impl<T> Default for Few<T> {
    fn default() -> Few<T> {
        Few {
            first: None,
            rest: None,
        }
    }
}

impl<T> Few<T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.as_ref().map_or(0, |r| r.len())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.into_iter()
    }

    /// The first item that matches.
    pub(crate) fn find_mut(&mut self, mut matches: impl FnMut(&T) -> bool) -> Option<&mut T> {
        let rest = self.rest.as_deref_mut().into_iter().flatten();
        self.first.iter_mut().chain(rest).find(|t| matches(t))
    }

    pub(crate) fn push(&mut self, item: T) {
        match self.first {
            None => self.first = Some(item),
            Some(_) => self.rest.get_or_insert_with(Box::default).push(item),
        }
    }

    /// Removes and returns the first item that matches, as
    /// `Vec::swap_remove` would.
    pub(crate) fn take(&mut self, mut matches: impl FnMut(&T) -> bool) -> Option<T> {
        if matches(self.first.as_ref()?) {
            let last = self.rest.as_mut().and_then(|r| r.pop());
            return std::mem::replace(&mut self.first, last);
        }
        let rest = self.rest.as_mut()?;
        let at = rest.iter().position(matches)?;
        Some(rest.swap_remove(at))
    }
}

impl<'a, T> IntoIterator for &'a Few<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Chain<
        std::option::Iter<'a, T>,
        std::iter::Flatten<std::option::IntoIter<&'a Vec<T>>>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.first
            .iter()
            .chain(self.rest.as_deref().into_iter().flatten())
    }
}

impl<T> IntoIterator for Few<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        let rest = self.rest.map_or_else(Vec::new, |r| *r);
        self.first.into_iter().chain(rest)
    }
}

/// A task.
///
/// Discussion: there is one record per task in the kernel's slab, a
/// million of them for a million sleeping tasks, so it holds only what
/// most tasks use. Its id is its slot in the slab and its serial, and the
/// record keeps the serial alone: whoever reaches a record came through
/// its slot (`State::task` checks the serial). Of its joiners, which most
/// tasks never have, it keeps the first one's slot, beside its run state
/// (see `joiners`). A sleeping task's record is 112 bytes, 64 of them its
/// park.
pub(crate) struct Task {
    /// The serial of its id; its slot is the rest.
    pub serial: u64,
    pub state: RunState,
    /// The slot of the first task joining it, if any (see `joiners`).
    pub joiner: Option<SlotPlusOne>,
    /// Whether `State::more_joiners` lists joiners after the first.
    pub more_joiners: bool,
    /// `None` for the main task (its future lives on `run`'s stack) and while polled.
    pub future: Option<TaskFuture>,
    pub inbox: Inbox,
    pub parks: Few<Park>,
}

impl Task {
    pub(crate) fn new(id: TaskId, future: Option<TaskFuture>) -> Task {
        Task {
            serial: id.serial(),
            state: RunState::Ready,
            joiner: None,
            more_joiners: false,
            future,
            inbox: Inbox::new(),
            parks: Few::default(),
        }
    }

    /// Its id, given the slot it sits in.
    pub(crate) fn id(&self, slot: usize) -> TaskId {
        TaskId::new(slot as u32, self.serial)
    }

    /// Whether this record is task `id`'s, found in `id`'s slot (and not an
    /// older or newer occupant of it).
    pub(crate) fn is(&self, id: TaskId) -> bool {
        self.serial == id.serial()
    }

    /// Makes the task runnable (a wake, a fired park). Returns whether it
    /// must join the ready queue: a task already there, or being polled
    /// (it is then polled again after this poll), must not.
    pub(crate) fn make_runnable(&mut self) -> bool {
        match self.state {
            RunState::Waiting => {
                self.state = RunState::Ready;
                true
            }
            RunState::Running { .. } => {
                self.state = RunState::Running { woken: true };
                false
            }
            RunState::Ready => false,
        }
    }

    /// Removes and returns the park of leaf `seq`, if the task holds one.
    pub(crate) fn take_park(&mut self, seq: u64) -> Option<Park> {
        self.parks.take(|p| p.seq == seq)
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("serial", &self.serial)
            .field("state", &self.state)
            .field("parks", &self.parks)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs<'a>(few: impl IntoIterator<Item = &'a u64>) -> Vec<u64> {
        few.into_iter().copied().collect()
    }

    /// There is one record per task (a million for a million sleeping
    /// tasks): it stays this size, its park inline.
    #[test]
    fn a_task_record_is_112_bytes() {
        assert_eq!(std::mem::size_of::<On>(), 24);
        assert_eq!(std::mem::size_of::<Park>(), 64);
        assert_eq!(std::mem::size_of::<Task>(), 112);
        assert_eq!(std::mem::size_of::<Option<Waiter>>(), 16);
    }

    /// The first item lives inline; taking items keeps the order a `Vec`
    /// with `swap_remove` would, so trace lines list parks as before.
    #[test]
    fn few_takes_like_swap_remove() {
        let mut few = Few::default();
        assert!(few.is_empty());
        few.push(1);
        assert!(few.rest.is_none(), "a lone item is inline");
        for seq in 2..=4 {
            few.push(seq);
        }
        assert_eq!((few.len(), seqs(&few)), (4, vec![1, 2, 3, 4]));
        let mut model: Vec<u64> = vec![1, 2, 3, 4];
        for seq in [1, 3, 9, 2, 4] {
            let expected = model
                .iter()
                .position(|s| *s == seq)
                .map(|at| model.swap_remove(at));
            assert_eq!(few.take(|s| *s == seq), expected);
            assert_eq!(seqs(&few), model, "after taking {seq}");
        }
        assert!(few.is_empty());
        few.push(5);
        assert_eq!(few.find_mut(|s| *s == 5).copied(), Some(5));
        assert!(few.find_mut(|s| *s == 6).is_none());
        assert_eq!(few.into_iter().collect::<Vec<_>>(), [5]);
    }
}
