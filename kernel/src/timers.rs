//! The timer queue: a binary heap of deadlines with lazy deletion.
//!
//! Discussion: cancelling a sleep or a timeout does not search the heap. The
//! entry stays and goes *stale*: when it reaches the top, the kernel checks it
//! against the park or timeout it names and drops it if that no longer holds
//! its tie. A `timeout_after` in a loop leaves one stale entry per iteration,
//! so the queue counts its live entries and is rebuilt when stale ones
//! dominate.
//!
//! Discussion: an entry is 16 bytes, and there is one per sleeping task.
//! Its deadline is kept as signed nanoseconds from an epoch (an `Instant`
//! takes 16 bytes): exact within 292 years either side. The epoch is the
//! first deadline pushed, and moves when a deadline lands two centuries
//! from it (`Timers::rebase`). The other word holds a 32-bit *tie*, the kind of slab the entry
//! points into and a slot in it. Who lives in the slot is read off the slab
//! when the entry fires, and the entry wakes the park (or timeout) there
//! that holds its tie *and* its deadline (`Entry::is_for`).
//!
//! Discussion: ties are counted in 32 bits and wrap, every 2^32 entries.
//! Two things rest on them, and neither goes wrong at a wrap:
//! - Which park an entry is for. A stale entry can outlive 2^32 later
//!   pushes (nothing forces it out before its deadline) and then share its
//!   tie with a newer park in the same slot. It fires that park only if
//!   their deadlines are equal too, and then it fires it at the park's own
//!   deadline, exactly when the park's own entry would have: no sleep or
//!   timeout ever fires early or late. The park's own entry then finds no
//!   park and is dropped as stale. (A rebuild may count both entries live,
//!   so the live count is kept no larger than the heap.)
//! - The order of equal deadlines, which is the order they were set in.
//!   Ties are compared by their wrapping difference, so an entry set just
//!   after a wrap still comes after one set just before it. This holds for
//!   any two entries with the same deadline set fewer than 2^31 entries
//!   apart; beyond that (a deadline repeated after two billion other
//!   timers) two entries due at the same nanosecond may come out in either
//!   order, and both still fire in the same pass. Deadlines that differ are
//!   always compared exactly, so the heap never fires a later deadline
//!   before an earlier one.

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
    /// The park or timeout it serves keeps the same number (see `Entry::is_for`).
    pub tie: u32,
    /// The slot of the task or timeout it was pushed for.
    pub slot: u32,
    pub kind: Kind,
    /// `at` as the heap keeps it, and what it counts from.
    offset: i64,
    epoch: Instant,
}

impl Entry {
    /// Whether this is the entry pushed for `deadline` that returned `tie`
    /// (or one indistinguishable from it: see the Discussion above).
    pub(crate) fn is_for(&self, deadline: Instant, tie: u32) -> bool {
        self.tie == tie && offset(self.epoch, deadline) == self.offset
    }
}

/// An entry as the heap keeps it: two words.
#[derive(Debug, Clone, Copy)]
struct Stored {
    /// Nanoseconds from the queue's epoch.
    at: i64,
    /// The tie in the high 32 bits, then the kind (set for a timeout), then
    /// the slot in the low 31 bits.
    word: u64,
}

/// The bit of `Stored::word` set for a timeout's entry.
const TIMEOUT_BIT: u64 = 1 << 31;

impl Stored {
    fn tie(self) -> u32 {
        (self.word >> 32) as u32
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Stored) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Stored {}
impl PartialOrd for Stored {
    fn partial_cmp(&self, other: &Stored) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Stored {
    // Earliest first; equal deadlines in the order they were set, ties
    // compared across a wrap (see the Discussion above). Two equal
    // deadlines with ties exactly 2^31 apart each compare as set after the
    // other: neither order is wrong for them, and the heap needs no more.
    fn cmp(&self, other: &Stored) -> Ordering {
        let set_after = self.tie().wrapping_sub(other.tie()) as i32;
        self.at.cmp(&other.at).then(set_after.cmp(&0))
    }
}

/// How far from the epoch a deadline may land before the epoch moves to it
/// (see `Timers::rebase`): two centuries, well inside the ±292 years an
/// `i64` of nanoseconds holds.
const EPOCH_REACH: u64 = 200 * 365 * 24 * 3600 * 1_000_000_000;

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
    /// What offsets count from: the first deadline pushed, moved by
    /// `rebase`.
    epoch: Option<Instant>,
    live: usize,
    /// The tie of the last entry pushed.
    last_tie: u32,
}

impl Timers {
    /// Entries that will still fire.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Adds an entry; returns its tie, which the owner keeps, beside the
    /// deadline, to recognise it.
    pub(crate) fn push(&mut self, at: Instant, alarm: Alarm) -> u32 {
        self.last_tie = self.last_tie.wrapping_add(1);
        let (slot, kind_bit) = match alarm {
            Alarm::Sleep(waiter) => (waiter.slot(), 0),
            Alarm::Timeout(id) => (id.index(), TIMEOUT_BIT),
        };
        // Task slots stay below 2^24 (`MAX_TASKS`); timeout slots below
        // 2^31, as each holds a record of its own (2^31 of them would take
        // over 100 GB).
        debug_assert!(u64::from(slot) < TIMEOUT_BIT, "slot {slot} out of range");
        let slot = u64::from(slot) & (TIMEOUT_BIT - 1);
        let mut at_offset = offset(*self.epoch.get_or_insert(at), at);
        if at_offset.unsigned_abs() > EPOCH_REACH {
            self.rebase(at);
            at_offset = 0;
        }
        self.heap.push(Reverse(Stored {
            at: at_offset,
            word: u64::from(self.last_tie) << 32 | kind_bit | slot,
        }));
        self.live += 1;
        self.last_tie
    }

    /// Counts offsets from `epoch` from now on, moving every entry there.
    ///
    /// Discussion: offsets count from an epoch, and an `i64` of nanoseconds
    /// reaches 292 years either way. The epoch is the first deadline pushed,
    /// and moves to a deadline that lands more than two centuries from it:
    /// a `sleep(Duration::MAX)` among near sleeps, or a virtual clock that
    /// runs on for centuries while the heap is never empty. Each entry's
    /// offset shifts by the same exact amount, so the order, the ties and
    /// the deadlines `Entry::is_for` compares stay the same. Only deadlines
    /// live at once more than 292 years apart cannot all be kept exactly:
    /// the ones furthest from the epoch are clamped and fire early, where a
    /// sleep traps again (and its new entry, moving the epoch, is exact)
    /// and a timeout expires. No real clock gets there; a virtual one does
    /// with a timeout of three centuries beside a near deadline. (When the
    /// first deadline pushed was "for ever", nearer ones were once clamped
    /// to a century ahead, and a virtual clock spun on a clamped sleep.)
    fn rebase(&mut self, epoch: Instant) {
        if let Some(old) = self.epoch.replace(epoch) {
            let heap = std::mem::take(&mut self.heap);
            self.heap = heap
                .into_iter()
                .map(|Reverse(stored)| {
                    let at = offset(epoch, instant(old, stored.at));
                    Reverse(Stored { at, ..stored })
                })
                .collect();
        }
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
        // An entry was pushed, so the epoch is set.
        let epoch = self.epoch.expect("an entry implies an epoch");
        let kind = match stored.word & TIMEOUT_BIT {
            0 => Kind::Sleep,
            _ => Kind::Timeout,
        };
        Entry {
            at: instant(epoch, stored.at),
            tie: stored.tie(),
            slot: (stored.word & (TIMEOUT_BIT - 1)) as u32,
            kind,
            offset: stored.at,
            epoch,
        }
    }

    /// Removes the earliest entry. The caller tells whether it was live.
    pub(crate) fn pop(&mut self, was_live: bool) -> Option<Entry> {
        let stored = self.heap.pop()?.0;
        if was_live {
            self.live -= 1;
        }
        // A rebuild may have counted an entry and its stale twin both live
        // (see the Discussion above); the twin is dropped as stale.
        self.live = self.live.min(self.heap.len());
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
impl Timers {
    /// These timers with `next` as their next tie, as if some multiple of
    /// 2^32 entries had been pushed since.
    pub(crate) fn tying_from(self, next: u32) -> Timers {
        Timers {
            last_tie: next.wrapping_sub(1),
            ..self
        }
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

    /// An entry stays two words in the heap: there is one per sleeping task.
    #[test]
    fn an_entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Reverse<Stored>>(), 16);
    }

    /// Timers whose next tie is `next`.
    fn timers_tying_from(next: u32) -> Timers {
        Timers::default().tying_from(next)
    }

    /// Equal deadlines set across a wrap of the ties still come out in the
    /// order set, and apart from unequal ones, earliest first.
    #[test]
    fn equal_deadlines_keep_their_order_across_a_wrap() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(1);
        let mut timers = timers_tying_from(u32::MAX - 2);
        let set: Vec<(Instant, u32)> = [later, t0, later, t0, later, t0, t0]
            .into_iter()
            .map(|at| (at, timers.push(at, sleep_alarm(0))))
            .collect();
        assert_eq!(
            set.iter().map(|&(_, tie)| tie).collect::<Vec<_>>(),
            [u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 1, 2, 3],
            "the ties wrap"
        );
        let mut expected = set.clone();
        expected.sort_by_key(|&(at, _)| at); // stable: the order set
        let popped: Vec<(Instant, u32)> =
            std::iter::from_fn(|| timers.pop(true).map(|e| (e.at, e.tie))).collect();
        assert_eq!(popped, expected);
    }

    /// An entry is made for the deadline and tie it was pushed with, not for
    /// another deadline that shares its tie (2^32 pushes later).
    #[test]
    fn an_entry_is_made_for_its_deadline_and_tie() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(250 * 365 * 24 * 3600);
        let mut timers = Timers::default();
        let tie = timers.push(t0, sleep_alarm(1));
        let far_tie = timers.push(far, sleep_alarm(2));
        let entry = timers.pop(true).unwrap();
        assert!(entry.is_for(t0, tie));
        assert!(!entry.is_for(t0 + Duration::from_nanos(1), tie));
        assert!(!entry.is_for(t0, tie + 1));
        // Both are recognised as themselves after the epoch moved.
        let entry = timers.pop(true).unwrap();
        assert!(entry.is_for(far, far_tie));
    }

    /// A rebuild that counts a stale entry and its live twin (same slot,
    /// tie and deadline) both live leaves no count behind once they pop.
    #[test]
    fn a_stale_twin_leaves_no_live_count_behind() {
        let t0 = Instant::now();
        let mut timers = timers_tying_from(7);
        timers.push(t0, sleep_alarm(1));
        timers.went_stale();
        let mut timers = timers.tying_from(7);
        timers.push(t0, sleep_alarm(2));
        timers.compact(|_| true);
        assert_eq!(timers.live(), 2);
        timers.pop(true);
        timers.pop(false);
        assert_eq!((timers.live(), timers.peek()), (0, None));
        assert!(!timers.wants_compaction());
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

    /// A deadline centuries after the first one (the epoch moves to it)
    /// still comes out after every nearer one.
    #[test]
    fn a_deadline_centuries_away_comes_out_after_every_nearer_one() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(250 * 365 * 24 * 3600);
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
        let popped: Vec<(u32, u32, Kind)> =
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
        let order: Vec<u32> = std::iter::from_fn(|| timers.pop(true).map(|e| e.tie)).collect();
        assert_eq!(order, [tie_a, tie_b, late]);
        assert_eq!(timers.live(), 0);
    }

    /// Compaction keeps exactly the entries the owner still recognises, and
    /// the live count follows it.
    #[test]
    fn compaction_keeps_only_live_entries() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let ties: Vec<u32> = (0..3000)
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
        let kept: Vec<u32> =
            std::iter::from_fn(|| timers.pop(true).map(|e| e.tie - ties[0])).collect();
        assert_eq!(kept, (0..30).map(|i| i * 100).collect::<Vec<_>>());
    }

    /// A deadline two centuries and more from the epoch moves the epoch:
    /// the entries keep their order, their deadlines and their ties.
    #[test]
    fn a_far_deadline_moves_the_epoch_and_keeps_every_entry() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let year = Duration::from_secs(365 * 24 * 3600);
        let (near, far, later) = (t0, t0 + year * 250, t0 + Duration::from_secs(1));
        let pushed = [near, far, later].map(|at| (at, timers.push(at, sleep_alarm(0))));
        // Moved to `far`, then back to `later`, two centuries from it.
        assert_eq!(timers.epoch, Some(later));
        let mut popped = Vec::new();
        while let Some(entry) = timers.pop(true) {
            let (at, tie) = *pushed.iter().find(|(_, tie)| *tie == entry.tie).unwrap();
            assert_eq!(entry.at, at);
            assert!(entry.is_for(at, tie));
            popped.push(entry.at);
        }
        assert_eq!(popped, [near, later, far]);
    }
}
