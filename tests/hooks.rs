//! Activation hooks: created, running, suspended (with the traps), terminated,
//! in the exact order the kernel lives them.

mod util;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::pending;
use std::rc::Rc;
use std::time::{Duration, Instant};

use trapline::task::Builder;
use trapline::{sleep, spawn, yield_now, Ended, Hooks, Kernel, Parked, Spawned, TaskId};

/// Writes every hook call down, naming tasks by the name they were given.
#[derive(Default)]
struct Recorder {
    names: RefCell<HashMap<TaskId, String>>,
    events: RefCell<Vec<String>>,
}

impl Recorder {
    fn name(&self, task: TaskId) -> String {
        self.names
            .borrow()
            .get(&task)
            .cloned()
            .unwrap_or_else(|| "?".to_string())
    }

    fn push(&self, event: String) {
        self.events.borrow_mut().push(event);
    }

    fn events(&self) -> Vec<String> {
        self.events.borrow().clone()
    }
}

impl Hooks for Recorder {
    fn created(&self, task: TaskId, spawned: &Spawned<'_>) {
        let name = spawned.name.unwrap_or("unnamed").to_string();
        self.names.borrow_mut().insert(task, name.clone());
        let parent = spawned.parent.map(|p| format!(" by {}", self.name(p)));
        let at = spawned.location;
        self.push(format!(
            "created {name} at {}:{}{}",
            at.file(),
            at.line(),
            parent.unwrap_or_default()
        ));
    }

    fn running(&self, task: TaskId, _at: Instant) {
        self.push(format!("running {}", self.name(task)));
    }

    fn suspended(&self, task: TaskId, parks: &[Parked], _at: Instant) {
        let parks: Vec<String> = parks
            .iter()
            .map(|p| format!("{} at line {}", p.trap.name(), p.location.line()))
            .collect();
        self.push(format!(
            "suspended {} [{}]",
            self.name(task),
            parks.join(", ")
        ));
    }

    fn terminated(&self, task: TaskId, how: Ended, _at: Instant) {
        self.push(format!("terminated {} {how}", self.name(task)));
    }
}

/// Runs `future` on a kernel with `recorder` installed; asserts the kernel
/// is clean afterwards.
#[track_caller]
fn run_recorded<F: std::future::Future>(
    recorder: &Rc<Recorder>,
    grace: Duration,
    future: F,
) -> F::Output {
    let mut kernel = Kernel::builder()
        .shutdown_grace(grace)
        .hooks(recorder.clone())
        .build()
        .expect("a kernel");
    let out = kernel.run(future).expect("the kernel ran");
    util::assert_clean(&kernel.stats());
    out
}

/// A main task that spawns a child, joins it; the child yields once. Every
/// hook call, in order, with the lines of the spawn and of each await.
#[test]
fn hooks_fire_in_exact_order() {
    let rec = Rc::new(Recorder::default());
    let run_line = line!() + 1;
    let (spawn_line, yield_line, join_line) = run_recorded(&rec, Duration::from_secs(1), async {
        let body = async {
            let line = line!() + 1;
            yield_now().await.unwrap();
            line
        };
        let (child, spawn_line) = (Builder::new().name("child").spawn(body), line!());
        let child = child.unwrap();
        let join_line = line!() + 1;
        let yield_line = child.join().await.unwrap();
        (spawn_line, yield_line, join_line)
    });
    let file = file!();
    assert_eq!(
        rec.events(),
        [
            format!("created main at {file}:{run_line}"),
            "running main".to_string(),
            format!("created child at {file}:{spawn_line} by main"),
            format!("suspended main [Join at line {join_line}]"),
            "running child".to_string(),
            format!("suspended child [Yield at line {yield_line}]"),
            "running child".to_string(),
            "terminated child completed".to_string(),
            "running main".to_string(),
            "terminated main completed".to_string(),
        ]
    );
}

/// A panicking task ends `panicked`; a task that never reaches a trap is
/// `dropped` at shutdown; an unnamed spawn reports no name and its line.
#[test]
fn terminated_says_how() {
    let rec = Rc::new(Recorder::default());
    let spawn_line = run_recorded(&rec, Duration::ZERO, async {
        let boom = Builder::new()
            .name("boom")
            .spawn(async { panic!("on purpose") })
            .unwrap();
        assert!(boom.join().await.is_err());
        let (stuck, line) = (spawn(pending::<()>()), line!());
        drop(stuck.unwrap());
        line
    });
    let events = rec.events();
    let ends: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("terminated"))
        .collect();
    assert_eq!(
        ends,
        [
            "terminated boom panicked",
            "terminated main completed",
            "terminated unnamed dropped"
        ]
    );
    assert!(
        events.contains(&format!(
            "created unnamed at {}:{spawn_line} by main",
            file!()
        )),
        "{events:?}"
    );
}

/// Two parks at once (`join!` of two sleeps) are both reported, and a
/// cancelled sleeper's end is seen after its last suspension.
#[test]
fn suspended_reports_every_park() {
    let rec = Rc::new(Recorder::default());
    let (spawn_line, sleep_line, cancel_line) = run_recorded(&rec, Duration::from_secs(1), async {
        let (sleepers, sleep_line) = (
            async {
                let (hour, two) = (Duration::from_secs(3600), Duration::from_secs(7200));
                let (a, b) = futures::join!(sleep(hour), sleep(two));
                assert!(a.is_err() && b.is_err(), "both cancelled");
            },
            line!() - 3,
        );
        let (sleeper, spawn_line) = (Builder::new().name("sleeper").spawn(sleepers), line!());
        let sleeper = sleeper.unwrap();
        yield_now().await.unwrap();
        let cancel_line = line!() + 1;
        sleeper.cancel().await.unwrap();
        (spawn_line, sleep_line, cancel_line)
    });
    let events = rec.events();
    let sleeper: Vec<&str> = events
        .iter()
        .filter(|e| e.contains("sleeper"))
        .map(String::as_str)
        .collect();
    let file = file!();
    assert_eq!(
        sleeper,
        [
            format!("created sleeper at {file}:{spawn_line} by main").as_str(),
            "running sleeper",
            format!("suspended sleeper [Sleep at line {sleep_line}, Sleep at line {sleep_line}]")
                .as_str(),
            "running sleeper",
            "terminated sleeper completed",
        ]
    );
    assert!(events.contains(&format!("suspended main [Join at line {cancel_line}]")));
}

/// A hook that panics is contained and logged; the kernel and the other
/// hooks go on.
#[test]
fn panicking_hook_is_contained() {
    struct Panics;
    impl Hooks for Panics {
        fn running(&self, _: TaskId, _: Instant) {
            panic!("a broken hook");
        }
    }
    let rec = Rc::new(Recorder::default());
    let mut kernel = Kernel::builder()
        .hooks(Rc::new(Panics))
        .hooks(rec.clone())
        .build()
        .unwrap();
    assert_eq!(kernel.run(async { 7 }).unwrap(), 7);
    assert_eq!(rec.events()[1], "running main", "the second hook still ran");
}

/// Hooks may use traps, and each knows who is current: `created` runs inside
/// the spawn, with the spawner current; the other hooks run between polls,
/// with no task current. Every hook reads the clock, which answers.
#[test]
fn hooks_may_use_traps() {
    #[derive(Default)]
    struct Asking(Recorder);
    impl Asking {
        fn ask(&self, event: &str, task: TaskId) {
            trapline::clock().expect("the kernel answers a hook");
            let current = match trapline::current() {
                Ok(id) => self.0.name(id),
                Err(e) => e.to_string(),
            };
            self.0
                .push(format!("{event} {}: current {current}", self.0.name(task)));
        }
    }
    impl Hooks for Asking {
        fn created(&self, task: TaskId, spawned: &Spawned<'_>) {
            self.0.created(task, spawned);
            self.0.events.borrow_mut().pop();
            self.ask("created", task);
        }
        fn running(&self, task: TaskId, _: Instant) {
            self.ask("running", task);
        }
        fn suspended(&self, task: TaskId, _: &[Parked], _: Instant) {
            self.ask("suspended", task);
        }
        fn terminated(&self, task: TaskId, _: Ended, _: Instant) {
            self.ask("terminated", task);
        }
    }
    let asking = Rc::new(Asking::default());
    let mut kernel = Kernel::builder().hooks(asking.clone()).build().unwrap();
    kernel
        .run(async {
            let child = Builder::new().name("child").spawn(async {}).unwrap();
            child.join().await.unwrap();
        })
        .unwrap();
    util::assert_clean(&kernel.stats());
    let none = "unsupported trap: no task is running";
    assert_eq!(
        asking.0.events(),
        [
            format!("created main: current {none}"),
            format!("running main: current {none}"),
            "created child: current main".to_string(),
            format!("suspended main: current {none}"),
            format!("running child: current {none}"),
            format!("terminated child: current {none}"),
            format!("running main: current {none}"),
            format!("terminated main: current {none}"),
        ]
    );
}

/// Records like [`Recorder`], and acts once on the task named `target`:
/// spawns a task named "helper" and cancels the target, from the `created`
/// hook (`in_created`) or from its first `suspended`.
struct Meddler {
    rec: Recorder,
    target: &'static str,
    in_created: bool,
    done: std::cell::Cell<bool>,
}

impl Meddler {
    fn meddle(&self, task: TaskId) {
        if self.done.get() || self.rec.name(task) != self.target {
            return;
        }
        self.done.set(true);
        let helper = Builder::new().name("helper").spawn(async {});
        let cancelled = trapline::traps::cancel(task);
        self.rec.push(format!(
            "hook spawned helper: {}, cancelled {}: {cancelled:?}",
            helper.is_ok(),
            self.target
        ));
    }
}

impl Hooks for Meddler {
    fn created(&self, task: TaskId, spawned: &Spawned<'_>) {
        self.rec.created(task, spawned);
        if self.in_created {
            self.meddle(task);
        }
    }
    fn running(&self, task: TaskId, at: Instant) {
        self.rec.running(task, at);
    }
    fn suspended(&self, task: TaskId, parks: &[Parked], at: Instant) {
        self.rec.suspended(task, parks, at);
        if !self.in_created {
            self.meddle(task);
        }
    }
    fn terminated(&self, task: TaskId, how: Ended, at: Instant) {
        self.rec.terminated(task, how, at);
    }
}

/// Runs a main task that spawns "victim" (which sleeps an hour) and joins
/// it, under a [`Meddler`]; returns the victim's output and the events.
fn meddled(in_created: bool) -> (Result<(), trapline::TrapError>, Vec<String>) {
    let meddler = Rc::new(Meddler {
        rec: Recorder::default(),
        target: "victim",
        in_created,
        done: std::cell::Cell::new(false),
    });
    let mut kernel = Kernel::builder().hooks(meddler.clone()).build().unwrap();
    let out = kernel
        .run(async {
            let victim = Builder::new()
                .name("victim")
                .spawn(async { sleep(Duration::from_secs(3600)).await })
                .unwrap();
            victim.join().await.unwrap()
        })
        .unwrap();
    util::assert_clean(&kernel.stats());
    (out, meddler.rec.events())
}

/// A `created` hook may spawn and cancel, inside the spawn it is told of:
/// its helper is the spawner's child, and the victim, cancelled before its
/// first poll, sees `Cancelled` at its first trap.
#[test]
fn created_hook_may_spawn_and_cancel() {
    let (out, events) = meddled(true);
    assert_eq!(out, Err(trapline::TrapError::Cancelled));
    let events: Vec<String> = events.iter().map(|e| strip_lines(e)).collect();
    assert_eq!(
        events,
        [
            "created main",
            "running main",
            "created victim by main",
            "created helper by main",
            "hook spawned helper: true, cancelled victim: Ok(true)",
            "suspended main [Join]",
            "running victim",
            "terminated victim completed",
            "running helper",
            "terminated helper completed",
            "running main",
            "terminated main completed",
        ]
    );
}

/// A `suspended` hook may spawn and cancel: the helper has no parent (no
/// task is current between polls), and the victim, parked on its sleep, is
/// resumed with `Cancelled`.
#[test]
fn suspended_hook_may_spawn_and_cancel() {
    let (out, events) = meddled(false);
    assert_eq!(out, Err(trapline::TrapError::Cancelled));
    let events: Vec<String> = events.iter().map(|e| strip_lines(e)).collect();
    assert_eq!(
        events,
        [
            "created main",
            "running main",
            "created victim by main",
            "suspended main [Join]",
            "running victim",
            "suspended victim [Sleep]",
            "created helper",
            "hook spawned helper: true, cancelled victim: Ok(true)",
            "running helper",
            "terminated helper completed",
            "running victim",
            "terminated victim completed",
            "running main",
            "terminated main completed",
        ]
    );
}

/// An event with its source lines dropped (`at tests/hooks.rs:12` and
/// `at line 12` go), so the expected lists read by meaning.
fn strip_lines(event: &str) -> String {
    let mut out = event.to_string();
    for marker in [" at tests/hooks.rs:", " at line "] {
        while let Some(at) = out.find(marker) {
            let end = out[at + marker.len()..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(out.len(), |n| at + marker.len() + n);
            out.replace_range(at..end, "");
        }
    }
    out
}

/// A main task that panics ends `panicked` too; the panic is raised from
/// `run` after the hooks have seen the end.
#[test]
fn main_panic_is_reported() {
    let rec = Rc::new(Recorder::default());
    let mut kernel = Kernel::builder().hooks(rec.clone()).build().unwrap();
    let raised = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        kernel.run(async { panic!("main gives up") })
    }));
    assert!(raised.is_err());
    let events = rec.events();
    assert_eq!(events[1..], ["running main", "terminated main panicked"]);
}
