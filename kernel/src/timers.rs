//! The timer queue: a binary heap of deadlines with lazy deletion.
//!
//! Discussion: cancelling a sleep or a timeout does not search the heap. The
//! entry stays and goes *stale*: when it reaches the top, the kernel checks it
//! against the park or timeout it names and drops it if that no longer holds
//! its tie. A `timeout_after` in a loop leaves one stale entry per iteration,
//! so the queue counts its live entries and is rebuilt when stale ones
//! dominate.
//!
//! Discussion: an entry is 32 bytes, one per sleeping task. It names what it
//! wakes by a slab slot and its *tie* alone, not by the task's id and the
//! leaf's sequence number: ties come from one counter that never repeats, so
//! the park (or timeout) that holds this tie is the one the entry was made
//! for, whoever lives in the slot now. Who that is, is read off the slab when
//! the entry fires.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

use trapline_traps::TimeoutId;

use crate::task::Waiter;

/// What an entry is pushed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alarm {
    Sleep(Waiter),
    Timeout(TimeoutId),
}

/// Which slab an entry's slot is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A task's slot: one of its parks holds the tie.
    Sleep,
    /// A timeout's slot: the timeout holds the tie.
    Timeout,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub at: Instant,
    /// Unique per entry: the park or timeout it serves keeps the same number.
    pub tie: u64,
    /// The slot of the task or timeout it was pushed for.
    pub slot: u32,
    pub kind: Kind,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.at, self.tie) == (other.at, other.tie)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Earliest first; equal deadlines in the order they were set.
    fn cmp(&self, other: &Entry) -> Ordering {
        (self.at, self.tie).cmp(&(other.at, other.tie))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    live: usize,
    next_tie: u64,
}

impl Timers {
    /// Entries that will still fire.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Adds an entry; returns its tie, which the owner keeps to recognise it.
    pub(crate) fn push(&mut self, at: Instant, alarm: Alarm) -> u64 {
        self.next_tie += 1;
        let (slot, kind) = match alarm {
            Alarm::Sleep(waiter) => (waiter.task.index(), Kind::Sleep),
            Alarm::Timeout(id) => (id.index(), Kind::Timeout),
        };
        self.heap.push(Reverse(Entry {
            at,
            tie: self.next_tie,
            slot,
            kind,
        }));
        self.live += 1;
        self.next_tie
    }

    /// One live entry went stale (its park was undone, its timeout unset).
    pub(crate) fn went_stale(&mut self) {
        self.live -= 1;
    }

    /// The earliest entry, stale or not.
    pub(crate) fn peek(&self) -> Option<Entry> {
        self.heap.peek().map(|r| r.0)
    }

    /// Removes the earliest entry. The caller tells whether it was live.
    pub(crate) fn pop(&mut self, was_live: bool) -> Option<Entry> {
        let entry = self.heap.pop()?.0;
        if was_live {
            self.live -= 1;
        }
        Some(entry)
    }

    /// Whether stale entries dominate enough to be worth a rebuild.
    pub(crate) fn wants_compaction(&self) -> bool {
        let stale = self.heap.len() - self.live;
        stale > 1024 && stale > self.live
    }

    /// Keeps only the entries `is_live` approves.
    pub(crate) fn compact(&mut self, mut is_live: impl FnMut(&Entry) -> bool) {
        let heap = std::mem::take(&mut self.heap);
        self.heap = heap.into_iter().filter(|r| is_live(&r.0)).collect();
        self.live = self.heap.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use trapline_traps::TaskId;

    fn sleep_alarm(seq: u64) -> Alarm {
        Alarm::Sleep(Waiter {
            task: TaskId::new(0, 1),
            seq,
        })
    }

    /// An entry stays four words: there is one per sleeping task.
    #[test]
    fn an_entry_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    /// An entry keeps the slot of what it was pushed for, and its kind.
    #[test]
    fn an_entry_names_its_slot_and_kind() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let sleep = Alarm::Sleep(Waiter {
            task: TaskId::new(7, 1),
            seq: 3,
        });
        let a = timers.push(t0, sleep);
        let b = timers.push(t0, Alarm::Timeout(TimeoutId::new(9, 2)));
        let popped: Vec<(u64, u32, Kind)> =
            std::iter::from_fn(|| timers.pop(true).map(|e| (e.tie, e.slot, e.kind))).collect();
        assert_eq!(popped, [(a, 7, Kind::Sleep), (b, 9, Kind::Timeout)]);
    }

    /// Entries come out earliest first, and equal deadlines in the order set.
    #[test]
    fn earliest_first_then_in_order_set() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let late = timers.push(t0 + Duration::from_millis(20), sleep_alarm(1));
        let tie_a = timers.push(t0 + Duration::from_millis(10), sleep_alarm(2));
        let tie_b = timers.push(t0 + Duration::from_millis(10), sleep_alarm(3));
        let order: Vec<u64> = std::iter::from_fn(|| timers.pop(true).map(|e| e.tie)).collect();
        assert_eq!(order, [tie_a, tie_b, late]);
        assert_eq!(timers.live(), 0);
    }

    /// Compaction keeps exactly the entries the owner still recognises, and
    /// the live count follows it.
    #[test]
    fn compaction_keeps_only_live_entries() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let ties: Vec<u64> = (0..3000)
            .map(|i| timers.push(t0 + Duration::from_millis(i), sleep_alarm(i)))
            .collect();
        // All but every hundredth entry go stale.
        for _ in 0..ties.len() - 30 {
            timers.went_stale();
        }
        assert_eq!(timers.live(), 30);
        assert!(timers.wants_compaction());
        timers.compact(|e| (e.tie - ties[0]) % 100 == 0);
        assert_eq!(timers.live(), 30);
        assert!(!timers.wants_compaction());
        let kept: Vec<u64> =
            std::iter::from_fn(|| timers.pop(true).map(|e| e.tie - ties[0])).collect();
        assert_eq!(kept, (0..30).map(|i| i * 100).collect::<Vec<_>>());
    }
}
