//! A per-task timeline from activation hooks: when each task was created,
//! ran, was suspended (on which trap, at which line) and ended.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example timeline
//! ```
//!
//! The hooks only write events down; the timeline is printed after the run,
//! grouped by task, with times from the start of the run. A few tasks give it
//! something to show: two sleepers, one cut short by `timeout_after`, and
//! one cancelled by the main task.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use trapline::task::Builder;
use trapline::{sleep, timeout_after, Ended, Hooks, Kernel, Parked, Spawned, TaskId};

/// One task's line in the timeline: its name and its events.
type Life = (String, Vec<(Instant, String)>);

/// What the hooks write down, per task.
#[derive(Default)]
struct Timeline {
    start: RefCell<Option<Instant>>,
    tasks: RefCell<BTreeMap<u64, Life>>,
}

impl Timeline {
    fn note(&self, task: TaskId, at: Instant, what: String) {
        self.start.borrow_mut().get_or_insert(at);
        if let Some((_, events)) = self.tasks.borrow_mut().get_mut(&task.serial()) {
            events.push((at, what));
        }
    }

    fn print(&self) {
        let Some(start) = *self.start.borrow() else {
            return;
        };
        for (serial, (name, events)) in self.tasks.borrow().iter() {
            println!("task {serial} {name}");
            for (at, what) in events {
                let ms = at.saturating_duration_since(start).as_secs_f64() * 1e3;
                println!("  {ms:>8.3} ms  {what}");
            }
        }
    }
}

impl Hooks for Timeline {
    fn created(&self, task: TaskId, spawned: &Spawned<'_>) {
        let name = format!("{:?}", spawned.name.unwrap_or("unnamed"));
        self.tasks
            .borrow_mut()
            .insert(task.serial(), (name, Vec::new()));
        let what = format!("created at {}", spawned.location);
        self.note(task, spawned.at, what);
    }

    fn running(&self, task: TaskId, at: Instant) {
        self.note(task, at, "running".to_string());
    }

    fn suspended(&self, task: TaskId, parks: &[Parked], at: Instant) {
        let on: Vec<String> = parks
            .iter()
            .map(|p| format!("{} at {}", p.trap, p.location))
            .collect();
        let what = if on.is_empty() {
            "suspended, on a foreign waker".to_string()
        } else {
            format!("suspended on {}", on.join(" and "))
        };
        self.note(task, at, what);
    }

    fn terminated(&self, task: TaskId, how: Ended, at: Instant) {
        self.note(task, at, format!("terminated: {how}"));
    }
}

fn main() -> std::io::Result<()> {
    let timeline = Rc::new(Timeline::default());
    let mut kernel = Kernel::builder().hooks(timeline.clone()).build()?;
    kernel.run(async {
        let short = Builder::new().name("short nap").spawn(async {
            sleep(Duration::from_millis(5)).await?;
            sleep(Duration::from_millis(5)).await
        })?;
        let long = Builder::new()
            .name("long nap")
            .spawn(sleep(Duration::from_millis(20)))?;
        let cut = Builder::new().name("cut short").spawn(timeout_after(
            Duration::from_millis(10),
            sleep(Duration::from_secs(60)),
        ))?;
        let doomed = Builder::new()
            .name("cancelled")
            .spawn(sleep(Duration::from_secs(60)))?;
        short.join().await??;
        assert!(doomed.cancel().await?.is_err(), "cancelled at its sleep");
        long.join().await??;
        assert!(cut.join().await?.is_err(), "timed out");
        Ok::<(), std::io::Error>(())
    })??;
    timeline.print();
    Ok(())
}
