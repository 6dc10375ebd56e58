//! The monitor's task board, kept up to date by the kernel's hooks.
//!
//! The kernel keeps no name, spawn line or parking time for its tasks: that
//! would cost every task something whether anyone watches or not. The
//! monitor keeps them itself, from the four activation hooks: a task is
//! written on the board when it is created, its polls are counted when it
//! runs, its traps and the time are noted when it is suspended, and it is
//! wiped off when it terminates.
//!
//! Discussion: the board is borrowed inside a hook, and while the monitor
//! formats an answer. Most hooks run between polls, when no formatting can be
//! under way; `created` runs inside a spawn, during the spawner's poll, so it
//! would meet a borrowed board if a task spawned while it held one. The
//! board's own hooks make no trap, and the monitor makes none while it holds
//! the board (it formats, lets go, then writes), so this does not happen;
//! should it ever, the hook skips its note rather than panic inside the
//! kernel (`try_borrow_mut`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::Location;
use std::time::Instant;

use trapline_kernel::{Ended, Hooks, Parked, Spawned};
use trapline_traps::{TaskId, Trap};

/// What the board knows of one task.
#[derive(Debug)]
pub(crate) struct Record {
    pub id: TaskId,
    pub name: Option<String>,
    pub spawned_at: &'static Location<'static>,
    pub parent: Option<TaskId>,
    pub polls: u64,
    /// When it was last suspended; `None` until its first suspension.
    pub since: Option<Instant>,
    /// The traps it waits under since its last suspension.
    pub parks: Vec<(Trap, &'static Location<'static>)>,
}

/// Every live task of one kernel, by serial number.
#[derive(Debug, Default)]
pub(crate) struct Board {
    tasks: RefCell<BTreeMap<u64, Record>>,
}

impl Board {
    /// Runs `f` over the records, in id order.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&BTreeMap<u64, Record>) -> R) -> R {
        f(&self.tasks.borrow())
    }

    fn note(&self, task: TaskId, f: impl FnOnce(&mut Record)) {
        if let Ok(mut tasks) = self.tasks.try_borrow_mut() {
            if let Some(record) = tasks.get_mut(&task.serial()).filter(|r| r.id == task) {
                f(record);
            }
        }
    }
}

/// A copy of a blocking trap, which holds only plain values (`Trap` itself
/// is not `Clone`: `Spawn` carries a future).
fn copy(trap: &Trap) -> Trap {
    match *trap {
        Trap::Sleep { deadline } => Trap::Sleep { deadline },
        Trap::ReadWait { fd } => Trap::ReadWait { fd },
        Trap::ReadDrained { fd } => Trap::ReadDrained { fd },
        Trap::WriteWait { fd } => Trap::WriteWait { fd },
        Trap::SchedWait { queue } => Trap::SchedWait { queue },
        Trap::Join { task } => Trap::Join { task },
        Trap::Yield => Trap::Yield,
        // Immediate traps are never parked under; `FutureWait` is itself.
        _ => Trap::FutureWait,
    }
}

impl Hooks for Board {
    fn created(&self, task: TaskId, spawned: &Spawned<'_>) {
        if let Ok(mut tasks) = self.tasks.try_borrow_mut() {
            let record = Record {
                id: task,
                name: spawned.name.map(str::to_string),
                spawned_at: spawned.location,
                parent: spawned.parent,
                polls: 0,
                since: None,
                parks: Vec::new(),
            };
            tasks.insert(task.serial(), record);
        }
    }

    fn running(&self, task: TaskId, _at: Instant) {
        self.note(task, |r| {
            r.polls += 1;
            r.parks.clear();
        });
    }

    fn suspended(&self, task: TaskId, parks: &[Parked], at: Instant) {
        self.note(task, |r| {
            r.since = Some(at);
            r.parks.clear(); // keeps its room: no allocation per poll
            r.parks
                .extend(parks.iter().map(|p| (copy(&p.trap), p.location)));
        });
    }

    fn terminated(&self, task: TaskId, _how: Ended, _at: Instant) {
        if let Ok(mut tasks) = self.tasks.try_borrow_mut() {
            if tasks.get(&task.serial()).is_some_and(|r| r.id == task) {
                tasks.remove(&task.serial());
            }
        }
    }
}
