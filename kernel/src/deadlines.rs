//! Deadlines: the timeouts a task arms, and firing what the timer queue says is due.
//!
//! A sleep's entry fires its park. A timeout's entry parks nothing: when it
//! fires, the kernel records `TimedOut(id)` in the owner's inbox and
//! interrupts the task, so that a leaf inside the timeout's scope takes it.

use std::time::Instant;

use trapline_traps::{TaskId, TimeoutId, TrapError};

use crate::state::{State, Timeout};
use crate::task::Waiter;
use crate::timers::{Alarm, Entry, Kind};

impl State {
    /// Arms a timeout for task `task`.
    pub(crate) fn set_timeout(&mut self, task: TaskId, deadline: Instant) -> TimeoutId {
        let serial = self.serials.next();
        let entry = self.timeouts.vacant_entry();
        let id = TimeoutId::new(entry.key() as u32, serial);
        let timer = self.timers.push(deadline, Alarm::Timeout(id));
        entry.insert(Timeout {
            id,
            task,
            parent: trapline_traps::innermost_scope(),
            expired: false,
            timer: (deadline, timer),
        });
        id
    }

    /// Disarms timeout `id`; `current` is the running task (whose inbox is in the slot).
    pub(crate) fn unset_timeout(&mut self, id: TimeoutId, current: Option<TaskId>) {
        let key = id.index() as usize;
        if self.timeouts.get(key).map(|t| t.id) != Some(id) {
            return;
        }
        let timeout = self.timeouts.remove(key);
        if !timeout.expired {
            self.timers.went_stale();
        }
        if current != Some(timeout.task) {
            if let Some(task) = self.task(timeout.task) {
                task.inbox.forget(id);
            }
        }
    }

    /// What a timer entry wakes, if it still means something: the park or
    /// the timeout in its slot that holds its tie and its deadline. (A tie
    /// repeats only after 2^32 entries, and then the deadline tells them
    /// apart, or the entry fires the park exactly when the park's own entry
    /// would: see `timers`.)
    fn resolve(&self, entry: &Entry) -> Option<Alarm> {
        let slot = entry.slot as usize;
        let is_for = |(deadline, tie)| entry.is_for(deadline, tie);
        match entry.kind {
            Kind::Sleep => {
                let task = self.tasks.get(slot)?;
                let park = task
                    .parks
                    .iter()
                    .find(|p| p.on.timer().is_some_and(is_for))?;
                Some(Alarm::Sleep(Waiter::at(entry.slot, park.seq)))
            }
            Kind::Timeout => self
                .timeouts
                .get(slot)
                .filter(|t| !t.expired && is_for(t.timer))
                .map(|t| Alarm::Timeout(t.id)),
        }
    }

    /// Whether a timer entry still means something.
    fn is_live(&self, entry: &Entry) -> bool {
        self.resolve(entry).is_some()
    }

    /// The next deadline that will fire, dropping stale entries on the way.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(top) = self.timers.peek() {
            if self.is_live(&top) {
                return Some(top.at);
            }
            self.timers.pop(false);
        }
        None
    }

    /// Rebuilds the timer heap when stale entries dominate it. Called every
    /// pass: a busy kernel (never idle) would otherwise keep one stale entry
    /// per `timeout_after` until its deadline came up.
    #[inline]
    pub(crate) fn compact_timers(&mut self) {
        if self.timers.wants_compaction() {
            let mut timers = std::mem::take(&mut self.timers);
            timers.compact(|e| self.is_live(e));
            self.timers = timers;
        }
    }

    /// Fires every timer due now; reads the clock only if a timer is set.
    #[inline]
    pub(crate) fn expire_due(&mut self) {
        if self.timers.peek().is_some() {
            let now = self.now();
            self.expire(now);
        }
    }

    /// Fires every timer due at `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(top) = self.timers.peek().filter(|e| e.at <= now) {
            let alarm = self.resolve(&top);
            self.timers.pop(alarm.is_some());
            let Some(alarm) = alarm else {
                continue;
            };
            match alarm {
                Alarm::Sleep(waiter) => self.fire(waiter),
                Alarm::Timeout(id) => {
                    let timeout = &mut self.timeouts[id.index() as usize];
                    timeout.expired = true;
                    let task = timeout.task;
                    if let Some(t) = self.task(task) {
                        t.inbox.expire(id);
                        self.interrupt(task, TrapError::TimedOut(id));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::state::testing::{push_park, state, waiting_task};
    use crate::task::On;

    /// Parks leaf `seq` of task `id` in a sleep until `deadline`, as
    /// `State::park` does, its timer entry taking tie `tie`.
    fn park_sleep(st: &mut State, id: TaskId, seq: u64, deadline: Instant, tie: u32) {
        st.timers = std::mem::take(&mut st.timers).tying_from(tie);
        let pushed = st.timers.push(deadline, Alarm::Sleep(Waiter::new(id, seq)));
        assert_eq!(pushed, tie);
        push_park(st, id, seq, On::Sleep { deadline, tie }, None);
    }

    /// A sleep undone before its deadline leaves a stale entry; 2^32 entries
    /// later a sleep of the same task gets the same tie. The stale entry
    /// does not fire it: the new sleep ends at its own deadline, once.
    #[test]
    fn a_stale_entry_sharing_a_tie_fires_no_other_sleep() {
        let mut st = state();
        let id = waiting_task(&mut st);
        let t0 = Instant::now() + Duration::from_secs(3600);
        park_sleep(&mut st, id, 1, t0 + Duration::from_secs(1), u32::MAX);
        st.unpost(id.index(), 1);
        park_sleep(&mut st, id, 2, t0 + Duration::from_secs(2), u32::MAX);
        assert_eq!(st.timers.live(), 1);

        st.expire(t0 + Duration::from_secs(1));
        assert!(st.ready.is_empty(), "the stale entry fired nothing");
        assert_eq!(st.task(id).unwrap().parks.len(), 1);
        st.expire(t0 + Duration::from_secs(2));
        assert_eq!(st.ready, [id]);
        assert!(st.task(id).unwrap().parks.is_empty());
        assert_eq!((st.timers.live(), st.timers.peek()), (0, None));
    }

    /// The same, with equal deadlines: whichever entry pops first fires the
    /// sleep at its deadline; the other one is dropped as stale, also after
    /// a rebuild that kept both.
    #[test]
    fn a_stale_twin_fires_the_sleep_at_its_own_deadline_once() {
        for rebuild in [false, true] {
            let mut st = state();
            let id = waiting_task(&mut st);
            let at = Instant::now() + Duration::from_secs(3600);
            park_sleep(&mut st, id, 1, at, 5);
            st.unpost(id.index(), 1);
            park_sleep(&mut st, id, 2, at, 5);
            if rebuild {
                let mut timers = std::mem::take(&mut st.timers);
                timers.compact(|e| st.is_live(e));
                st.timers = timers;
            }
            st.expire(at - Duration::from_nanos(1));
            assert!(st.ready.is_empty());
            st.expire(at);
            assert_eq!(st.ready, [id], "rebuild: {rebuild}");
            assert!(st.task(id).unwrap().parks.is_empty());
            assert_eq!((st.timers.live(), st.timers.peek()), (0, None));
        }
    }

    /// A timeout unset before its deadline leaves a stale entry; a timeout
    /// set later in its slot with the same tie expires at its own deadline.
    #[test]
    fn a_stale_entry_sharing_a_tie_expires_no_other_timeout() {
        let mut st = state();
        let id = waiting_task(&mut st);
        let t0 = Instant::now() + Duration::from_secs(3600);
        st.timers = std::mem::take(&mut st.timers).tying_from(9);
        let first = st.set_timeout(id, t0 + Duration::from_secs(1));
        st.unset_timeout(first, None);
        st.timers = std::mem::take(&mut st.timers).tying_from(9);
        let second = st.set_timeout(id, t0 + Duration::from_secs(2));
        assert_eq!(second.index(), first.index());

        st.expire(t0 + Duration::from_secs(1));
        assert!(!st.timeouts[second.index() as usize].expired);
        st.expire(t0 + Duration::from_secs(2));
        assert!(st.timeouts[second.index() as usize].expired);
        assert_eq!((st.timers.live(), st.timers.peek()), (0, None));
    }

    /// A rebuild of a heap that stale entries dominate keeps exactly the
    /// live sleep and timeout, which then fire at their deadlines.
    #[test]
    fn a_rebuild_keeps_live_sleeps_and_timeouts() {
        let mut st = state();
        let id = waiting_task(&mut st);
        let at = Instant::now() + Duration::from_secs(3600);
        park_sleep(&mut st, id, 1, at, 1);
        let live = st.set_timeout(id, at + Duration::from_secs(1));
        for _ in 0..2000 {
            let stale = st.set_timeout(id, at);
            st.unset_timeout(stale, None);
        }
        st.compact_timers();
        assert_eq!(st.timers.live(), 2);
        assert!(!st.timers.wants_compaction(), "the stale entries are gone");
        st.expire(at);
        assert_eq!(st.ready, [id]);
        st.expire(at + Duration::from_secs(1));
        assert!(st.timeouts[live.index() as usize].expired);
        assert_eq!((st.timers.live(), st.timers.peek()), (0, None));
    }
}
