//! The monitor's commands: one line in, a few lines of plain text out.
//!
//! Every answer is built whole, from the board (what the hooks noted) and
//! the probe (what the kernel holds now), before a byte is written, so a
//! slow reader never sees a half-updated picture and the kernel is never
//! held up by one: the connection's task writes at its own pace.
//!
//! Bad input gets one line beginning `error:` that says what was wrong and
//! what would be right; the connection stays open.
//!
//! Names are the user's text: `ps` prints them escaped as in a Rust string
//! (`a\nb`, `tab\t`), so a name cannot break a row or forge a prompt.

use std::fmt::Write;
use std::time::{Duration, Instant};

use trapline_kernel::{Probe, TaskState};
use trapline_traps::TaskId;

use super::board::{Board, Record};

/// One line of input, understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Ps,
    Where(u64),
    Cancel(u64),
    Stats,
    Help,
    Quit,
    /// A blank line: nothing to do.
    Nothing,
}

pub(crate) const HELP: &str = "\
commands:
  ps          every task: id, name, state, polls, time parked, traps
  where ID    the lines of task ID's awaits, and of its spawn
  cancel ID   cancel task ID (it sees Cancelled at its trap)
  stats       the kernel's counts
  help        this list
  quit        close this connection
";

/// Reads one line of input.
pub(crate) fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return Ok(Command::Nothing);
    };
    let arg = words.next();
    if let Some(extra) = words.next() {
        return Err(format!(
            "unexpected {extra:?} after {verb} {}",
            arg.unwrap_or("")
        ));
    }
    let id = |what: &str| -> Result<u64, String> {
        match arg {
            None => Err(format!("{what} needs a task id, as in \"{what} 2\"")),
            Some(a) => a
                .strip_prefix('#')
                .unwrap_or(a)
                .parse()
                .map_err(|_| format!("{a:?} is not a task id (a number, as ps shows)")),
        }
    };
    let bare = |cmd: Command| match arg {
        None => Ok(cmd),
        Some(a) => Err(format!("{verb} takes no argument, not {a:?}")),
    };
    match verb {
        "ps" => bare(Command::Ps),
        "where" => id("where").map(Command::Where),
        "cancel" => id("cancel").map(Command::Cancel),
        "stats" => bare(Command::Stats),
        "help" | "?" => bare(Command::Help),
        "quit" | "exit" => bare(Command::Quit),
        other => Err(format!("unknown command {other:?}; type help")),
    }
}

/// A duration as `ps` shows it: three significant figures at most.
pub(crate) fn short(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}us")
    } else if us < 1e6 {
        format!("{:.1}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// The state column: the kernel's word, refined by what the board saw.
fn state(probe: &Probe, record: &Record) -> &'static str {
    match probe.state(record.id) {
        Some(TaskState::Ready) => "ready",
        Some(TaskState::Running) => "running",
        Some(TaskState::Waiting) if record.parks.is_empty() => "waiting",
        Some(TaskState::Waiting) => "parked",
        None => "ended",
    }
}

/// The traps column: what the task is parked on now. A task that is ready
/// or running again is parked on nothing, whatever it last trapped on
/// (`where` tells that).
fn traps(state: &str, record: &Record) -> String {
    if state != "parked" {
        return "-".to_string();
    }
    let shown: Vec<String> = record.parks.iter().map(|(t, _)| t.to_string()).collect();
    shown.join(", ")
}

/// `ps`: one line per task, in id order.
pub(crate) fn ps(board: &Board, probe: &Probe, now: Instant) -> String {
    board.with(|tasks| {
        let rows: Vec<[String; 6]> = tasks
            .values()
            .map(|r| {
                let state = state(probe, r);
                let parked = match (state, r.since) {
                    ("parked" | "waiting", Some(since)) => {
                        short(now.saturating_duration_since(since))
                    }
                    _ => "-".to_string(),
                };
                [
                    r.id.serial().to_string(),
                    r.name
                        .as_deref()
                        .map_or_else(|| "-".to_string(), |n| n.escape_debug().to_string()),
                    state.to_string(),
                    r.polls.to_string(),
                    parked,
                    traps(state, r),
                ]
            })
            .collect();
        let head = ["ID", "NAME", "STATE", "POLLS", "PARKED", "TRAPS"].map(String::from);
        let mut width = head.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&head).chain(&rows) {
            let [id, name, state, polls, parked, traps] = row;
            let _ = writeln!(
                out,
                "{id:>w0$}  {name:<w1$}  {state:<w2$}  {polls:>w3$}  {parked:<w4$}  {traps}",
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3],
                w4 = width[4],
            );
        }
        out
    })
}

/// `where ID`: the task's spawn line and the line of each await it is
/// parked at.
pub(crate) fn where_is(board: &Board, probe: &Probe, serial: u64) -> Result<String, String> {
    board.with(|tasks| {
        let r = tasks
            .get(&serial)
            .ok_or_else(|| format!("no task {serial}"))?;
        let mut out = format!("{}", r.id);
        if let Some(name) = &r.name {
            let _ = write!(out, " {name:?}");
        }
        out.push('\n');
        let _ = write!(out, "  spawned at {}", r.spawned_at);
        if let Some(parent) = r.parent {
            let _ = write!(out, " by {parent}");
        }
        out.push('\n');
        match state(probe, r) {
            "parked" => {
                for (trap, at) in &r.parks {
                    let _ = writeln!(out, "  parked on {trap} at {at}");
                }
            }
            "waiting" => out.push_str("  waiting on a foreign waker, at no trap\n"),
            other => {
                let _ = writeln!(out, "  not parked ({other})");
                // Ready again (its park fired, or it yielded): where it was.
                for (trap, at) in &r.parks {
                    let _ = writeln!(out, "  last trapped on {trap} at {at}");
                }
            }
        }
        Ok(out)
    })
}

/// `cancel ID`, made by the connection's task `me`.
pub(crate) fn cancel(board: &Board, serial: u64, me: Option<TaskId>) -> Result<String, String> {
    let id = board
        .with(|tasks| tasks.get(&serial).map(|r| r.id))
        .ok_or_else(|| format!("no task {serial}"))?;
    if Some(id) == me {
        return Err(format!("{id} is this connection; type quit to leave"));
    }
    match trapline_traps::cancel(id) {
        Ok(true) => Ok(format!("cancelled {id}\n")),
        Ok(false) => Err(format!("{id} was already cancelled")),
        Err(e) => Err(format!("cannot cancel {id}: {e}")),
    }
}

/// `stats`: the kernel's counts, one a line.
pub(crate) fn stats(probe: &Probe) -> Result<String, String> {
    let s = probe.stats().ok_or("the kernel is gone")?;
    let by_trap: Vec<String> = probe
        .parked_by_trap()
        .into_iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let parked = if by_trap.is_empty() {
        s.parked.to_string()
    } else {
        format!("{} ({})", s.parked, by_trap.join(", "))
    };
    let rows: [(&str, String); 13] = [
        ("tasks", s.tasks.to_string()),
        ("ready", s.ready.to_string()),
        ("parked", parked),
        ("registrations", s.registrations.to_string()),
        ("timers", s.timers.to_string()),
        ("timeouts", s.timeouts.to_string()),
        ("wait queues", s.wait_queues.to_string()),
        ("passes", s.passes.to_string()),
        ("timer spins", s.timer_spins.to_string()),
        ("polls", s.polls.to_string()),
        ("events", s.events.to_string()),
        ("wakeups", s.wakeups.to_string()),
        ("spawned", s.spawned.to_string()),
    ];
    let mut out = String::new();
    for (name, value) in rows {
        let _ = writeln!(out, "{name:<14} {value}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, and each way a line can be wrong, with its exact message.
    #[test]
    fn parse_commands_and_errors() {
        assert_eq!(parse("ps"), Ok(Command::Ps));
        assert_eq!(parse("  where 12 "), Ok(Command::Where(12)));
        assert_eq!(parse("cancel #3"), Ok(Command::Cancel(3)));
        assert_eq!(parse("stats\r"), Ok(Command::Stats));
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("quit"), Ok(Command::Quit));
        assert_eq!(parse("   "), Ok(Command::Nothing));
        assert_eq!(
            parse("frobnicate"),
            Err("unknown command \"frobnicate\"; type help".to_string())
        );
        assert_eq!(
            parse("where"),
            Err("where needs a task id, as in \"where 2\"".to_string())
        );
        assert_eq!(
            parse("cancel abc"),
            Err("\"abc\" is not a task id (a number, as ps shows)".to_string())
        );
        assert_eq!(
            parse("ps all"),
            Err("ps takes no argument, not \"all\"".to_string())
        );
        assert_eq!(
            parse("where 1 2"),
            Err("unexpected \"2\" after where 1".to_string())
        );
    }

    /// Durations keep three significant figures in a unit a person reads.
    #[test]
    fn short_durations() {
        assert_eq!(short(Duration::from_micros(42)), "42us");
        assert_eq!(short(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(short(Duration::from_millis(2500)), "2.50s");
    }
}
