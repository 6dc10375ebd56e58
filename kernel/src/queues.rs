//! Wait queues: the leaves parked in `SchedWait` on each queue id, oldest
//! first. Sync primitives are built on them (a lock's waiters, a channel's
//! receivers); `SchedWake` takes from the front.
//!
//! Discussion: a queue that empties is not removed at once. A ping-pong
//! through a lock or a channel empties its queue on every wake and fills it
//! again on the next wait; removing and re-inserting it each time cost two
//! more hash-table operations and a buffer freed and allocated again, per
//! message. But a queue id whose primitive was dropped must not stay in the
//! map for good either, so emptied queues are counted, and swept out once
//! they are both many and at least half of the map (the sweep's cost is then
//! paid for by the waits that emptied them). Only queues with someone in
//! them count as wait queues to the outside ([`WaitQueues::len`]).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use trapline_traps::QueueId;

use crate::task::Waiter;

/// The hash of a wait queue's id: one multiplication.
///
/// Discussion: queue ids come from one process-wide counter
/// (`QueueId::new`) and cannot be chosen by input, so nothing can pick them
/// to collide; SipHash's defence against such inputs would cost a sync
/// primitive's every wait and wake (a quarter of a two-task ping-pong) for
/// nothing.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct QueueHasher(u64);

impl Hasher for QueueHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads consecutive ids over the table.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Every wait queue of a kernel.
#[derive(Debug, Default)]
pub(crate) struct WaitQueues {
    map: HashMap<QueueId, VecDeque<Waiter>, BuildHasherDefault<QueueHasher>>,
    /// How many queues in `map` are empty.
    ///
    /// # Invariant
    ///
    /// Equal to the number of empty queues in `map`.
    empty: usize,
}

/// Emptied queues are swept out only past this many, so that a program with
/// a few busy primitives never sweeps.
const SWEEP_PAST: usize = 64;

impl WaitQueues {
    /// Queues with at least one waiter.
    pub(crate) fn len(&self) -> usize {
        self.map.len() - self.empty
    }

    /// Adds `waiter` at the back of `queue`.
    pub(crate) fn push(&mut self, queue: QueueId, waiter: Waiter) {
        match self.map.entry(queue) {
            Entry::Occupied(mut q) => {
                if q.get().is_empty() {
                    self.empty -= 1;
                }
                q.get_mut().push_back(waiter);
            }
            Entry::Vacant(q) => {
                q.insert(VecDeque::new()).push_back(waiter);
            }
        }
    }

    /// Takes the oldest waiter of `queue`, if any.
    pub(crate) fn pop(&mut self, queue: QueueId) -> Option<Waiter> {
        let q = self.map.get_mut(&queue)?;
        let waiter = q.pop_front()?;
        if q.is_empty() {
            self.empty += 1;
        }
        Some(waiter)
    }

    /// Takes `waiter` out of `queue`, wherever it stands (its park is undone).
    pub(crate) fn remove(&mut self, queue: QueueId, waiter: Waiter) {
        let Some(q) = self.map.get_mut(&queue) else {
            return;
        };
        let was_empty = q.is_empty();
        q.retain(|w| *w != waiter);
        if q.is_empty() && !was_empty {
            self.empty += 1;
        }
    }

    /// Drops the emptied queues once they are many and at least half of all.
    /// Called every pass.
    pub(crate) fn sweep(&mut self) {
        if self.empty > SWEEP_PAST && self.empty * 2 >= self.map.len() {
            self.map.retain(|_, q| !q.is_empty());
            self.empty = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trapline_traps::TaskId;

    fn waiter(n: u64) -> Waiter {
        Waiter::new(TaskId::new(n as u32, n), n)
    }

    /// Oldest first; an emptied queue stays (for the next wait) but no
    /// longer counts.
    #[test]
    fn queues_are_fifo_and_count_only_waited_ones() {
        let mut queues = WaitQueues::default();
        let (a, b) = (QueueId::new(), QueueId::new());
        queues.push(a, waiter(1));
        queues.push(a, waiter(2));
        queues.push(b, waiter(3));
        assert_eq!(queues.len(), 2);
        assert_eq!(queues.pop(a), Some(waiter(1)));
        assert_eq!(queues.pop(a), Some(waiter(2)));
        assert_eq!(queues.pop(a), None);
        assert_eq!((queues.len(), queues.empty, queues.map.len()), (1, 1, 2));
        queues.push(a, waiter(4));
        assert_eq!((queues.len(), queues.empty), (2, 0), "filled again");
        queues.remove(b, waiter(9));
        assert_eq!(queues.len(), 2, "not there: nothing changes");
        queues.remove(b, waiter(3));
        queues.remove(b, waiter(3));
        assert_eq!((queues.len(), queues.empty), (1, 1), "counted once");
        assert_eq!(queues.pop(b), None);
        assert_eq!(queues.pop(QueueId::new()), None);
    }

    /// Emptied queues go once there are more than a few and they are at
    /// least half of the map; queues with waiters always stay.
    #[test]
    fn sweeps_emptied_queues_only_when_they_dominate() {
        let mut queues = WaitQueues::default();
        let busy: Vec<QueueId> = (0..100).map(|_| QueueId::new()).collect();
        for (n, q) in busy.iter().enumerate() {
            queues.push(*q, waiter(n as u64));
        }
        let idle: Vec<QueueId> = (0..99).map(|_| QueueId::new()).collect();
        for q in &idle {
            queues.push(*q, waiter(0));
            queues.pop(*q);
        }
        queues.sweep();
        assert_eq!(
            (queues.len(), queues.map.len()),
            (100, 199),
            "99 of 199: kept"
        );
        let last = QueueId::new();
        queues.push(last, waiter(0));
        queues.pop(last);
        queues.sweep();
        assert_eq!(
            (queues.len(), queues.map.len(), queues.empty),
            (100, 100, 0)
        );
        for (n, q) in busy.iter().enumerate() {
            assert_eq!(queues.pop(*q), Some(waiter(n as u64)));
        }
    }
}
