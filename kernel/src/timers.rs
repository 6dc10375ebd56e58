//! The timer queue: a binary heap of deadlines with lazy deletion.
//!
//! Discussion: cancelling a sleep or a timeout does not search the heap. The
//! entry stays and goes *stale*: when it reaches the top, the kernel checks it
//! against the park or timeout it names and drops it if that no longer holds
//! its tie. A `timeout_after` in a loop leaves one stale entry per iteration,
//! so the queue counts its live entries and is rebuilt when stale ones
//! dominate.
//!
//! Discussion: an entry is 24 bytes, and there is one per sleeping task.
//! It names what it wakes by a slab slot and its *tie* alone, not by the
//! task's id and the leaf's sequence number: ties come from one counter that
//! never repeats, so the park (or timeout) that holds this tie is the one the
//! entry was made for, whoever lives in the slot now. Who that is, is read
//! off the slab when the entry fires. Its deadline is kept as signed
//! nanoseconds from the first deadline the queue saw (an `Instant` takes 16
//! bytes): exact within 292 years either side, and beyond that clamped to
//! those 292 years, which changes no firing.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

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

/// An entry as the queue hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub at: Instant,
    /// Unique per entry: the park or timeout it serves keeps the same number.
    pub tie: u64,
    /// The slot of the task or timeout it was pushed for.
    pub slot: u32,
    pub kind: Kind,
}

/// An entry as the heap keeps it.
#[derive(Debug, Clone, Copy)]
struct Stored {
    /// Nanoseconds from the queue's epoch.
    at: i64,
    tie: u64,
    slot: u32,
    kind: Kind,
}

impl PartialEq for Stored {
    fn eq(&self, other: &Stored) -> bool {
        (self.at, self.tie) == (other.at, other.tie)
    }
}
impl Eq for Stored {}
impl PartialOrd for Stored {
    fn partial_cmp(&self, other: &Stored) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Stored {
    // Earliest first; equal deadlines in the order they were set.
    fn cmp(&self, other: &Stored) -> Ordering {
        (self.at, self.tie).cmp(&(other.at, other.tie))
    }
}

/// `at` as nanoseconds from `epoch`, clamped to what an `i64` holds.
fn offset(epoch: Instant, at: Instant) -> i64 {
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    match at.checked_duration_since(epoch) {
        Some(after) => nanos(after),
        None => -nanos(epoch.duration_since(at)),
    }
}

/// The instant `offset` nanoseconds from `epoch`.
fn instant(epoch: Instant, offset: i64) -> Instant {
    let distance = Duration::from_nanos(offset.unsigned_abs());
    let moved = if offset >= 0 {
        epoch.checked_add(distance)
    } else {
        epoch.checked_sub(distance)
    };
    // Unreachable in practice (a clock 292 years away); the epoch is then
    // the nearest instant there is.
    moved.unwrap_or(epoch)
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Stored>>,
    /// The first deadline pushed: offsets count from it.
    epoch: Option<Instant>,
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
            Alarm::Sleep(waiter) => (waiter.slot(), Kind::Sleep),
            Alarm::Timeout(id) => (id.index(), Kind::Timeout),
        };
        let epoch = *self.epoch.get_or_insert(at);
        self.heap.push(Reverse(Stored {
            at: offset(epoch, at),
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
        self.heap.peek().map(|r| self.entry(r.0))
    }

    fn entry(&self, stored: Stored) -> Entry {
        let Stored {
            at,
            tie,
            slot,
            kind,
        } = stored;
        // An entry was pushed, so the epoch is set.
        let epoch = self.epoch.expect("an entry implies an epoch");
        Entry {
            at: instant(epoch, at),
            tie,
            slot,
            kind,
        }
    }

    /// Removes the earliest entry. The caller tells whether it was live.
    pub(crate) fn pop(&mut self, was_live: bool) -> Option<Entry> {
        let stored = self.heap.pop()?.0;
        if was_live {
            self.live -= 1;
        }
        Some(self.entry(stored))
    }

    /// Whether stale entries dominate enough to be worth a rebuild.
    pub(crate) fn wants_compaction(&self) -> bool {
        let stale = self.heap.len() - self.live;
        stale > 1024 && stale > self.live
    }

    /// Keeps only the entries `is_live` approves.
    pub(crate) fn compact(&mut self, mut is_live: impl FnMut(&Entry) -> bool) {
        let heap = std::mem::take(&mut self.heap);
        self.heap = heap
            .into_iter()
            .filter(|r| is_live(&self.entry(r.0)))
            .collect();
        self.live = self.heap.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use trapline_traps::TaskId;

    fn sleep_alarm(seq: u64) -> Alarm {
        Alarm::Sleep(Waiter::new(TaskId::new(0, 1), seq))
    }

    /// An entry stays three words in the heap: there is one per sleeping task.
    #[test]
    fn an_entry_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Reverse<Stored>>(), 24);
    }

    /// Deadlines before and after the first one, a nanosecond apart or
    /// years apart, come back exactly and in order.
    #[test]
    fn deadlines_come_back_exactly_either_side_of_the_epoch() {
        let t0 = Instant::now() + Duration::from_secs(3 * 365 * 24 * 3600);
        let year = Duration::from_secs(365 * 24 * 3600);
        let ats = [
            t0,
            t0 + Duration::from_nanos(1),
            t0 - Duration::from_nanos(1),
            t0 + 200 * year,
            t0 - 2 * year,
            t0 + Duration::from_millis(5),
        ];
        let mut timers = Timers::default();
        for (i, &at) in ats.iter().enumerate() {
            timers.push(at, sleep_alarm(i as u64));
        }
        let mut sorted = ats.to_vec();
        sorted.sort();
        let popped: Vec<Instant> = std::iter::from_fn(|| timers.pop(true).map(|e| e.at)).collect();
        assert_eq!(popped, sorted);
    }

    /// Past 292 years from the first deadline, a deadline is clamped: it
    /// still comes out after every nearer one.
    #[test]
    fn a_deadline_beyond_range_is_clamped_not_wrapped() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(300 * 365 * 24 * 3600);
        let mut timers = Timers::default();
        timers.push(t0, sleep_alarm(1));
        timers.push(far, sleep_alarm(2));
        timers.push(t0 + Duration::from_secs(3600), sleep_alarm(3));
        let order: Vec<bool> = std::iter::from_fn(|| {
            timers
                .pop(true)
                .map(|e| e.at > t0 + Duration::from_secs(7200))
        })
        .collect();
        assert_eq!(order, [false, false, true]);
    }

    /// An entry keeps the slot of what it was pushed for, and its kind.
    #[test]
    fn an_entry_names_its_slot_and_kind() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let sleep = Alarm::Sleep(Waiter::new(TaskId::new(7, 1), 3));
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
