//! The timer queue: a binary heap of deadlines with lazy deletion.
//!
//! Discussion: cancelling a sleep or a timeout does not search the heap. The
//! entry stays and goes *stale*: when it reaches the top, the kernel checks it
//! against the park or timeout it names (same task serial, same leaf, same
//! deadline) and drops it if they no longer match. A `timeout_after` in a loop
//! leaves one stale entry per iteration, so the queue counts its live entries
//! and is rebuilt when stale ones dominate.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

use trapline_traps::TimeoutId;

use crate::task::Waiter;

/// What an entry wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alarm {
    Sleep(Waiter),
    Timeout(TimeoutId),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub at: Instant,
    /// Unique per entry: the park or timeout it serves keeps the same number.
    pub tie: u64,
    pub alarm: Alarm,
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
        self.heap.push(Reverse(Entry {
            at,
            tie: self.next_tie,
            alarm,
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
