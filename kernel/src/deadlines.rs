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
        let made_for = |(deadline, tie)| self.timers.made_for(entry, deadline, tie);
        match entry.kind {
            Kind::Sleep => {
                let task = self.tasks.get(slot)?;
                let park = task
                    .parks
                    .iter()
                    .find(|p| p.on.timer().is_some_and(made_for))?;
                Some(Alarm::Sleep(Waiter::at(entry.slot, park.seq)))
            }
            Kind::Timeout => self
                .timeouts
                .get(slot)
                .filter(|t| !t.expired && made_for(t.timer))
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
