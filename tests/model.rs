//! Random programs against a model: spawn, sleep, yield, timeout, join and
//! cancel, run on the virtual clock, and compared line by line with what a
//! small model of the kernel's rules says must happen, and when.
//!
//! The model is the contract in a few dozen lines: a sleep ends at its
//! deadline; a `timeout_after` ends its block at its limit unless the block
//! ends first, and of two nested limits the earlier one ends the block it
//! bounds (the outer one ends both); a join ends when the task joined ends and only the first join
//! gets the output; a cancel ends a waiting task at that instant with
//! `Cancelled` and reports whether it did; every task runs until it ends.
//!
//! Discussion: the programs are built so that no two events the model
//! cannot order fall on the same instant. Sleeps are whole minutes, limits
//! are whole minutes plus one second (so a limit never ties with a sleep),
//! and cancel number `c` happens at a whole minute plus 30 s plus `c` ms, a
//! time no other event of the program can reach. With fewer than 30 limits
//! in a program, no chain of them drifts a task onto a cancel's instant.
//! Two nested limits are never equal, so which one passed is never a tie.
//! Each task's log is compared on its own: tasks whose events share an
//! instant may run in either order, but what each one sees is exact.
//!
//! Wait queues (`SchedWait`) are exercised through the existing tests; the
//! models here stick to what the facade offers.

mod util;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use trapline::{
    clock, sleep, sleep_until, spawn, timeout_after, yield_now, JoinError, JoinHandle, TrapError,
};
use util::{assert_clean, run_virtual};

/// One step of a task's program.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// `sleep(n minutes)`.
    Sleep(u64),
    /// `yield_now()`.
    Yield,
    /// `timeout_after(limit min + 1 s, sleep(nap min))`.
    Timeout { limit: u64, nap: u64 },
    /// Join an earlier task (each task is joined by at most one task).
    Join(usize),
    /// `timeout_after(outer min + 1 s, timeout_after(inner min + 1 s,
    /// sleep(nap min)))`, with `inner != outer` (limits never tie).
    Nested { outer: u64, inner: u64, nap: u64 },
}

/// A cancel made by the canceller task at `minute` min + 30 s + `nth` ms.
#[derive(Debug, Clone, Copy)]
struct Cancel {
    minute: u64,
    nth: u64,
    target: usize,
}

#[derive(Debug, Clone)]
struct Program {
    tasks: Vec<Vec<Step>>,
    cancels: Vec<Cancel>,
}

/// Time in milliseconds since the start.
type Ms = u64;

const MIN: Ms = 60_000;

fn at_cancel(c: &Cancel) -> Ms {
    c.minute * MIN + 30_000 + c.nth
}

/// What every task, the canceller and main must log, by the model; `end`
/// is when main takes the outputs: a minute after the last event.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    logs: BTreeMap<String, Vec<String>>,
    end: Ms,
}

/// How a task ended, and when.
#[derive(Debug, Clone, Copy)]
struct Ending {
    at: Ms,
    cancelled: bool,
}

fn model(p: &Program) -> Expected {
    let mut logs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ends: Vec<Ending> = Vec::new();
    let mut joined_by_task = vec![false; p.tasks.len()];
    for (i, steps) in p.tasks.iter().enumerate() {
        let log = logs.entry(format!("task {i}")).or_default();
        // The first cancel aimed at task i decides its fate if it comes
        // while the task is waiting; a task's waits cover all its time.
        let cancel_at: Option<Ms> = p
            .cancels
            .iter()
            .filter(|c| c.target == i)
            .map(at_cancel)
            .min();
        let mut t: Ms = 0;
        let mut ending = None;
        for step in steps {
            // Each step waits from `t` to `until` and then logs `what`.
            let (until, what) = match *step {
                Step::Sleep(n) => (t + n * MIN, "slept".to_string()),
                Step::Yield => (t, "yielded".to_string()),
                Step::Timeout { limit, nap } => {
                    let deadline = t + limit * MIN + 1000;
                    let done = t + nap * MIN;
                    if done < deadline {
                        (done, "timeout: in time".to_string())
                    } else {
                        (deadline, "timeout: expired".to_string())
                    }
                }
                Step::Nested { outer, inner, nap } => {
                    let outer = t + outer * MIN + 1000;
                    let inner = t + inner * MIN + 1000;
                    let done = t + nap * MIN;
                    if done < outer.min(inner) {
                        (done, "nested: in time".to_string())
                    } else if inner < outer {
                        (inner, "nested: inner expired".to_string())
                    } else {
                        (outer, "nested: outer expired".to_string())
                    }
                }
                Step::Join(j) => {
                    let e = ends[j];
                    let what = if e.cancelled { "cancelled" } else { "ok" };
                    (t.max(e.at), format!("joined {j}: {what}"))
                }
            };
            if let Some(c) = cancel_at.filter(|&c| c > t && c < until) {
                log.push(format!("{c}: cancelled"));
                ending = Some(Ending {
                    at: c,
                    cancelled: true,
                });
                break;
            }
            if let Step::Join(j) = *step {
                joined_by_task[j] = true;
            }
            t = until;
            log.push(format!("{t}: {what}"));
        }
        let ending = ending.unwrap_or(Ending {
            at: t,
            cancelled: false,
        });
        log.push(format!("{}: end", ending.at));
        ends.push(ending);
    }
    let mut cancels = p.cancels.clone();
    cancels.sort_by_key(at_cancel);
    let mut cancelled = vec![false; p.tasks.len()];
    let canceller = logs.entry("canceller".into()).or_default();
    for c in &cancels {
        let at = at_cancel(c);
        let did = !cancelled[c.target] && ends[c.target].at >= at;
        cancelled[c.target] |= did;
        canceller.push(format!("{at}: cancel {} -> {did}", c.target));
    }
    let main = logs.entry("main".into()).or_default();
    for (j, e) in ends.iter().enumerate() {
        let what = match (joined_by_task[j], e.cancelled) {
            (true, _) => "already joined",
            (false, true) => "cancelled",
            (false, false) => "ok",
        };
        main.push(format!("joined {j}: {what}"));
    }
    let end = ends
        .iter()
        .map(|e| e.at)
        .chain(cancels.iter().map(at_cancel))
        .max()
        .unwrap_or(0)
        + MIN;
    Expected { logs, end }
}

type Logs = Rc<RefCell<BTreeMap<String, Vec<String>>>>;

fn note(logs: &Logs, who: &str, line: String) {
    logs.borrow_mut().entry(who.into()).or_default().push(line);
}

fn join_word<T>(r: &Result<Result<T, TrapError>, JoinError>) -> &'static str {
    match r {
        Ok(Ok(_)) => "ok",
        Ok(Err(TrapError::Cancelled)) => "cancelled",
        Err(JoinError::AlreadyJoined) => "already joined",
        _ => "unexpected",
    }
}

/// Runs `p` on a virtual-clock kernel; returns the logs, the clock at the
/// end, and the kernel's stats.
/// Main joins every task at `outputs_at` (taken from the model: whether a
/// task's join gets an output depends on who joins first, and main must come
/// last). If the run lasted longer, the logs show it.
fn run(p: &Program, outputs_at: Ms) -> (Expected, trapline::Stats) {
    let logs: Logs = Rc::default();
    let program = p.clone();
    let (end, stats) = run_virtual({
        let logs = logs.clone();
        async move {
            let t0 = clock().unwrap();
            let now = move || (clock().unwrap() - t0).as_millis() as u64;
            let mut handles: Vec<Rc<JoinHandle<Result<(), TrapError>>>> = Vec::new();
            for (i, steps) in program.tasks.iter().cloned().enumerate() {
                let who = format!("task {i}");
                let logs = logs.clone();
                let joins: Vec<_> = handles.clone();
                let handle = spawn(async move {
                    let cancelled = |logs: &Logs| {
                        note(logs, &who, format!("{}: cancelled", now()));
                        note(logs, &who, format!("{}: end", now()));
                        Err(TrapError::Cancelled)
                    };
                    for step in steps {
                        let what = match step {
                            Step::Sleep(n) => match sleep(Duration::from_secs(60 * n)).await {
                                Ok(()) => "slept".to_string(),
                                Err(_) => return cancelled(&logs),
                            },
                            Step::Yield => match yield_now().await {
                                Ok(()) => "yielded".to_string(),
                                Err(_) => return cancelled(&logs),
                            },
                            Step::Timeout { limit, nap } => {
                                let limit = Duration::from_secs(60 * limit + 1);
                                let nap = Duration::from_secs(60 * nap);
                                match timeout_after(limit, sleep(nap)).await {
                                    Ok(Ok(())) => "timeout: in time".to_string(),
                                    Err(TrapError::TimedOut(_)) => "timeout: expired".to_string(),
                                    Ok(Err(_)) => return cancelled(&logs),
                                    Err(e) => format!("timeout: {e:?}"),
                                }
                            }
                            Step::Nested { outer, inner, nap } => {
                                let outer = Duration::from_secs(60 * outer + 1);
                                let inner = Duration::from_secs(60 * inner + 1);
                                let nap = Duration::from_secs(60 * nap);
                                let nested = timeout_after(outer, timeout_after(inner, sleep(nap)));
                                match nested.await {
                                    Ok(Ok(Ok(()))) => "nested: in time".to_string(),
                                    Ok(Err(TrapError::TimedOut(_))) => {
                                        "nested: inner expired".to_string()
                                    }
                                    Err(TrapError::TimedOut(_)) => {
                                        "nested: outer expired".to_string()
                                    }
                                    Ok(Ok(Err(TrapError::Cancelled))) => return cancelled(&logs),
                                    other => format!("nested: {other:?}"),
                                }
                            }
                            Step::Join(j) => {
                                let r = joins[j].join().await;
                                if matches!(r, Err(JoinError::Interrupted(_))) {
                                    return cancelled(&logs);
                                }
                                format!("joined {j}: {}", join_word(&r))
                            }
                        };
                        note(&logs, &who, format!("{}: {what}", now()));
                    }
                    note(&logs, &who, format!("{}: end", now()));
                    Ok(())
                })
                .unwrap();
                handles.push(Rc::new(handle));
            }
            let mut cancels = program.cancels.clone();
            cancels.sort_by_key(at_cancel);
            let canceller = spawn({
                let (logs, handles) = (logs.clone(), handles.clone());
                async move {
                    for c in cancels {
                        sleep_until(t0 + Duration::from_millis(at_cancel(&c)))
                            .await
                            .unwrap();
                        let did = trapline::traps::cancel(handles[c.target].id()).unwrap();
                        note(
                            &logs,
                            "canceller",
                            format!("{}: cancel {} -> {did}", now(), c.target),
                        );
                    }
                }
            })
            .unwrap();
            canceller.join().await.unwrap();
            sleep_until(t0 + Duration::from_millis(outputs_at))
                .await
                .unwrap();
            let end = now();
            for (j, h) in handles.iter().enumerate() {
                let r = h.join().await;
                note(&logs, "main", format!("joined {j}: {}", join_word(&r)));
            }
            end
        }
    });
    let mut logs = logs.take();
    logs.entry("canceller".into()).or_default();
    logs.entry("main".into()).or_default();
    (Expected { logs, end }, stats)
}

fn step(i: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..4).prop_map(Step::Sleep),
        Just(Step::Yield),
        (0u64..4, 0u64..5).prop_map(|(limit, nap)| Step::Timeout { limit, nap }),
        (0u64..4, 0u64..3, 0u64..5).prop_map(|(outer, inner, nap)| Step::Nested {
            outer,
            // Never equal to `outer`.
            inner: if inner >= outer { inner + 1 } else { inner },
            nap
        }),
        (0..i.max(1)).prop_map(move |j| if i == 0 { Step::Yield } else { Step::Join(j) }),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (1usize..=5)
        .prop_flat_map(|n| {
            let tasks: Vec<_> = (0..n)
                .map(|i| proptest::collection::vec(step(i), 0..5))
                .collect();
            let cancels = proptest::collection::vec((0u64..10, 0..n), 0..4);
            (tasks, cancels)
        })
        .prop_map(|(mut tasks, cancels)| {
            // Each task is joined by at most one other task.
            let mut taken = vec![false; tasks.len()];
            for steps in &mut tasks {
                for s in steps.iter_mut() {
                    if let Step::Join(j) = *s {
                        if std::mem::replace(&mut taken[j], true) {
                            *s = Step::Sleep(1);
                        }
                    }
                }
            }
            let cancels = cancels
                .into_iter()
                .enumerate()
                .map(|(k, (minute, target))| Cancel {
                    minute,
                    nth: k as u64 + 1,
                    target,
                })
                .collect();
            Program { tasks, cancels }
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every random program logs exactly what the model says, at exactly the
    /// virtual millisecond it says, and leaves the kernel empty.
    #[test]
    fn random_programs_match_the_model(p in program()) {
        let expected = model(&p);
        let (got, stats) = run(&p, expected.end);
        prop_assert_eq!(got, expected);
        assert_clean(&stats);
    }
}

/// One hand-written program through the same machinery, so a reader can see
/// what a program and its expected logs look like.
#[test]
fn a_known_program_matches_its_model() {
    let p = Program {
        tasks: vec![
            vec![Step::Sleep(2), Step::Timeout { limit: 1, nap: 3 }],
            vec![Step::Join(0), Step::Sleep(5)],
            vec![Step::Yield, Step::Sleep(3)],
        ],
        cancels: vec![
            Cancel {
                minute: 4,
                nth: 1,
                target: 1,
            },
            Cancel {
                minute: 7,
                nth: 2,
                target: 2,
            },
        ],
    };
    let expected = model(&p);
    assert_eq!(
        expected.logs["task 0"],
        ["120000: slept", "181000: timeout: expired", "181000: end"]
    );
    assert_eq!(
        expected.logs["task 1"],
        ["181000: joined 0: ok", "270001: cancelled", "270001: end"]
    );
    assert_eq!(
        expected.logs["task 2"],
        ["0: yielded", "180000: slept", "180000: end"]
    );
    assert_eq!(
        expected.logs["canceller"],
        ["270001: cancel 1 -> true", "450002: cancel 2 -> false"]
    );
    assert_eq!(
        expected.logs["main"],
        [
            "joined 0: already joined",
            "joined 1: cancelled",
            "joined 2: ok"
        ]
    );
    let (got, stats) = run(&p, expected.end);
    assert_eq!(got, expected);
    assert_clean(&stats);
}
