//! Joiners: the tasks waiting in a `Join` trap for a task to end.
//!
//! Discussion: most tasks are never joined, and a joined one almost always
//! by one task at a time. So a task's record keeps the slot of its first
//! joiner, in four bytes beside its run state that alignment would leave
//! empty anyway, and only the joiners after the first go to a side map,
//! `State::more_joiners`, keyed by the joined task's slot. A slot is enough
//! to name a joiner: an entry lives exactly as long as the joiner's `Join`
//! park (undoing the park takes the entry out), so the task in that slot is
//! the joiner, and its park under `Join(target)` names the leaf to resume.
//! Joiners are resumed in the order they joined.

use trapline_traps::TaskId;

use crate::state::State;
use crate::task::{On, SlotPlusOne, Waiter};

impl State {
    /// Lists task `joiner` among the joiners of task `target`; `false` if
    /// `target` has ended (the join holds already).
    pub(crate) fn add_joiner(&mut self, target: TaskId, joiner: TaskId) -> bool {
        let slot = SlotPlusOne::new(joiner.index());
        let Some(t) = self.task(target) else {
            return false;
        };
        if t.joiner.is_none() {
            t.joiner = Some(slot);
        } else {
            t.more_joiners = true;
            self.more_joiners
                .entry(target.index())
                .or_default()
                .push(slot);
        }
        true
    }

    /// Takes task `joiner` off the joiners of task `target` once (it is
    /// listed once per `Join` park it holds).
    pub(crate) fn remove_joiner(&mut self, target: TaskId, joiner: TaskId) {
        let slot = SlotPlusOne::new(joiner.index());
        let Some(t) = self
            .tasks
            .get_mut(target.index() as usize)
            .filter(|t| t.is(target))
        else {
            return;
        };
        let more = match t.more_joiners {
            true => self.more_joiners.get_mut(&target.index()),
            false => None,
        };
        if t.joiner == Some(slot) {
            // The next one, if any, becomes the first.
            t.joiner = more.and_then(|more| (!more.is_empty()).then(|| more.remove(0)));
        } else if let Some(more) = more {
            if let Some(at) = more.iter().position(|s| *s == slot) {
                more.remove(at);
            }
        } else {
            return;
        }
        let emptied = self
            .more_joiners
            .get(&target.index())
            .is_none_or(Vec::is_empty);
        if t.more_joiners && emptied {
            self.more_joiners.remove(&target.index());
            t.more_joiners = false;
        }
    }

    /// Task `target` has ended: resumes its joiners, first to last.
    /// `first` and `more` are what its record held.
    pub(crate) fn fire_joiners(&mut self, target: TaskId, first: SlotPlusOne, more: bool) {
        self.fire_joiner(target, first);
        if more {
            let more = self
                .more_joiners
                .remove(&target.index())
                .unwrap_or_default();
            for slot in more {
                self.fire_joiner(target, slot);
            }
        }
    }

    /// Resumes the `Join(target)` park of the task in `slot`.
    fn fire_joiner(&mut self, target: TaskId, slot: SlotPlusOne) {
        let slot = slot.get() as usize;
        let Some(task) = self.tasks.get(slot) else {
            return;
        };
        let Some(park) = task.parks.iter().find(|p| p.on == On::Join(target)) else {
            return;
        };
        self.fire(Waiter::at(slot as u32, park.seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{push_park, state};
    use crate::task::RunState;

    /// Parks task `joiner` under `Join(target)` as leaf `seq`, as `State::park` does.
    fn join(st: &mut State, joiner: TaskId, target: TaskId, seq: u64) {
        assert!(st.add_joiner(target, joiner));
        st.task(joiner).unwrap().state = RunState::Waiting;
        push_park(st, joiner, seq, On::Join(target), None);
    }

    /// Joiners are resumed in the order they joined, whether the first
    /// one, a middle one or none left before the end; a task joining twice
    /// is resumed at both parks; nothing stays listed.
    #[test]
    fn joiners_resume_in_order_and_leave_nothing_behind() {
        for leaving in [None, Some(0), Some(2)] {
            let mut st = state();
            let target = st.spawn(None);
            let joiners: Vec<TaskId> = (0..4).map(|_| st.spawn(None)).collect();
            st.ready.clear();
            for (seq, &joiner) in joiners.iter().enumerate() {
                join(&mut st, joiner, target, seq as u64);
            }
            // The last one joins a second time, from another leaf.
            join(&mut st, joiners[3], target, 9);
            assert_eq!(st.more_joiners[&target.index()].len(), 4);
            let mut expected = joiners.clone();
            if let Some(at) = leaving {
                st.unpost(joiners[at].index(), at as u64);
                expected.remove(at);
            }
            assert!(st.finish(target).is_none(), "no boxed future");
            assert_eq!(Vec::from(st.ready.clone()), expected, "leaving {leaving:?}");
            for &joiner in &joiners {
                assert!(st.task(joiner).unwrap().parks.is_empty());
            }
            assert!(st.more_joiners.is_empty());
        }
    }

    /// The last joiner to leave takes the side list with it; the next
    /// joiner is the first again.
    #[test]
    fn the_side_list_goes_with_its_last_joiner() {
        let mut st = state();
        let target = st.spawn(None);
        let (a, b) = (st.spawn(None), st.spawn(None));
        join(&mut st, a, target, 1);
        join(&mut st, b, target, 2);
        st.unpost(a.index(), 1);
        assert_eq!(
            st.task(target).unwrap().joiner,
            Some(SlotPlusOne::new(b.index()))
        );
        assert!(st.more_joiners.is_empty() && !st.task(target).unwrap().more_joiners);
        st.unpost(b.index(), 2);
        assert_eq!(st.task(target).unwrap().joiner, None);
        join(&mut st, a, target, 3);
        assert_eq!(
            st.task(target).unwrap().joiner,
            Some(SlotPlusOne::new(a.index()))
        );
        assert!(st.more_joiners.is_empty());
    }
}
