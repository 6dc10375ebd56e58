//! Random programs against a model: spawn, sleep, yield, timeout, join,
//! cancel and the operations of one shared bounded queue, run on the
//! virtual clock, and compared line by line with what a small model of the
//! kernel's rules says must happen, and when.
//!
//! The model is the contract in a few dozen lines: a sleep ends at its
//! deadline; a `timeout_after` ends its block at its limit unless the block
//! ends first, and of two nested limits the earlier one ends the block it
//! bounds (the outer one ends both); a join ends when the task joined ends
//! and only the first join gets the output; a cancel ends a waiting task at
//! that instant with `Cancelled` and reports whether it did; every task runs
//! until it ends. The queue (capacity 1 to 3) is first in, first out: a put
//! hands its item to the oldest waiting getter, else adds it if there is
//! room and nobody waits before it, else waits in line; a get takes the
//! oldest item and lets the oldest waiting putter's item in; a get or put
//! ended by its limit or a cancel takes or adds nothing. Each task logs the
//! value it got or put, or the error, at its virtual millisecond; main logs
//! what is left in the queue at the end.
//!
//! The model walks the whole program in time order, one event at a time
//! (tasks now meet each other in the queue, not only in joins). A task
//! whose get or put never completes, or that joins such a task, waits for
//! good: main stops every task still running a minute after the model's
//! last event, last task first, so the joiner is stopped before the task it
//! waits for, and every program ends.
//!
//! Discussion: the programs are built so that no two events the model
//! cannot order fall on the same instant. Sleeps are whole minutes, limits
//! are whole minutes plus one second (so a limit never ties with a sleep),
//! and cancel number `c` happens at a whole minute plus 30 s plus `c` ms, a
//! time no other event of the program can reach. With fewer than 30 limits
//! in a program, no chain of them drifts a task onto a cancel's instant.
//! Two nested limits are never equal, so which one passed is never a tie.
//! Queue operation number `k` (at most six a program) first sleeps `8 * 2^k`
//! ms, so it reaches the queue at an instant whose milliseconds are a sum
//! of distinct powers of two (times 8) that includes its own: the instant
//! is made of the chain of events that led to it, and no other chain holds
//! `k`. So no two queue operations arrive together, and none arrives when a
//! waiting get or put is ended by a limit or a cancel; the order of the
//! line is the order of arrival, which the kernel defines. The offsets add
//! up to at most 504 ms, under the second that a limit adds. Each task's
//! log is compared on its own: tasks whose events share an instant may run
//! in either order, but what each one sees is exact.
//!
//! Wait queues (`SchedWait`) are exercised here through the queue.

mod util;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use trapline::{
    clock, sleep, sleep_until, spawn, sync::Queue, timeout_after, yield_now, JoinError, JoinHandle,
    TrapError,
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
    /// Queue operation number `nth` of the program: `sleep(arrival(nth))`,
    /// then `queue.put(value)`, under `timeout_after(limit min + 1 s, ..)`
    /// if there is a limit.
    Put {
        nth: u32,
        value: u64,
        limit: Option<u64>,
    },
    /// Queue operation number `nth`: `sleep(arrival(nth))`, then
    /// `queue.get()`, under a limit as for `Put`.
    Get { nth: u32, limit: Option<u64> },
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
    /// Of the program's one bounded queue.
    capacity: usize,
    cancels: Vec<Cancel>,
}

/// Time in milliseconds since the start.
type Ms = u64;

const MIN: Ms = 60_000;

/// At most this many queue operations in a program.
const QUEUE_OPS: u32 = 6;

/// How long queue operation `nth` sleeps before it reaches the queue:
/// 8 ms times a power of two of its own (see the Discussion).
fn arrival(nth: u32) -> Ms {
    8 << nth
}

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

/// How a task ended.
#[derive(Debug, Clone, Copy)]
struct Ending {
    cancelled: bool,
}

/// Where a task is in the model.
#[derive(Debug, Clone)]
enum State {
    /// Starts its next step at this instant.
    Ready(Ms),
    /// A step that ends by itself at `.0`, then logs `.1`.
    Until(Ms, String),
    /// A queue step that reaches the queue at this instant.
    Arrive(Ms),
    /// Waits for task `.0` to end.
    Joining(usize),
    /// In the queue's line of getters, until a put or its limit.
    Getting(Option<Ms>),
    /// In the queue's line of putters with its value, until a get or its limit.
    Putting(u64, Option<Ms>),
    Done(Ending),
}

/// The whole program in virtual time, one event at a time. Events at one
/// instant never touch the same thing (see the Discussion), so the order in
/// which they are taken does not change what anyone logs.
fn model(p: &Program) -> Expected {
    let n = p.tasks.len();
    let mut logs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let who = |i: usize| format!("task {i}");
    let mut state: Vec<State> = vec![State::Ready(0); n];
    let mut pc = vec![0usize; n];
    let mut joined_by_task = vec![false; n];
    let mut items: VecDeque<u64> = VecDeque::new();
    let mut getters: VecDeque<usize> = VecDeque::new();
    let mut putters: VecDeque<usize> = VecDeque::new();
    let mut cancels = p.cancels.clone();
    cancels.sort_by_key(at_cancel);
    let mut cancels: VecDeque<Cancel> = cancels.into();
    logs.entry("canceller".into()).or_default();
    let mut last: Ms = 0;
    loop {
        // The earliest thing that happens next.
        let cancel_next = cancels.front().map(at_cancel);
        let task_next = (0..n)
            .filter_map(|i| {
                let at = match state[i] {
                    State::Ready(at) | State::Until(at, _) | State::Arrive(at) => at,
                    State::Getting(Some(at)) | State::Putting(_, Some(at)) => at,
                    _ => return None,
                };
                Some((at, i))
            })
            .min();
        let (t, i) = match (cancel_next, task_next) {
            (None, None) => break,
            (Some(c), task) if task.is_none_or(|(at, _)| c < at) => {
                let c = cancels.pop_front().unwrap();
                let did = !matches!(state[c.target], State::Done(_));
                if did {
                    getters.retain(|&g| g != c.target);
                    putters.retain(|&g| g != c.target);
                    let log = logs.entry(who(c.target)).or_default();
                    log.push(format!("{t}: cancelled", t = at_cancel(&c)));
                    finish(
                        &mut logs,
                        &mut state,
                        &mut pc,
                        &mut joined_by_task,
                        c.target,
                        at_cancel(&c),
                        true,
                    );
                }
                last = last.max(at_cancel(&c));
                logs.entry("canceller".into()).or_default().push(format!(
                    "{}: cancel {} -> {did}",
                    at_cancel(&c),
                    c.target
                ));
                continue;
            }
            (_, Some(task)) => task,
            (_, None) => unreachable!(),
        };
        last = last.max(t);
        match std::mem::replace(&mut state[i], State::Ready(t)) {
            State::Ready(_) => {
                let Some(&step) = p.tasks[i].get(pc[i]) else {
                    finish(
                        &mut logs,
                        &mut state,
                        &mut pc,
                        &mut joined_by_task,
                        i,
                        t,
                        false,
                    );
                    continue;
                };
                state[i] = match step {
                    Step::Sleep(n) => State::Until(t + n * MIN, "slept".to_string()),
                    Step::Yield => State::Until(t, "yielded".to_string()),
                    Step::Timeout { limit, nap } => {
                        let deadline = t + limit * MIN + 1000;
                        let done = t + nap * MIN;
                        if done < deadline {
                            State::Until(done, "timeout: in time".to_string())
                        } else {
                            State::Until(deadline, "timeout: expired".to_string())
                        }
                    }
                    Step::Nested { outer, inner, nap } => {
                        let outer = t + outer * MIN + 1000;
                        let inner = t + inner * MIN + 1000;
                        let done = t + nap * MIN;
                        if done < outer.min(inner) {
                            State::Until(done, "nested: in time".to_string())
                        } else if inner < outer {
                            State::Until(inner, "nested: inner expired".to_string())
                        } else {
                            State::Until(outer, "nested: outer expired".to_string())
                        }
                    }
                    Step::Join(j) => match state[j] {
                        State::Done(e) => {
                            joined_by_task[j] = true;
                            State::Until(t, format!("joined {j}: {}", ok_word(e)))
                        }
                        _ => State::Joining(j),
                    },
                    Step::Put { nth, .. } | Step::Get { nth, .. } => {
                        State::Arrive(t + arrival(nth))
                    }
                };
            }
            State::Until(_, what) => {
                logs.entry(who(i)).or_default().push(format!("{t}: {what}"));
                pc[i] += 1;
            }
            State::Arrive(_) => {
                let limit = |l: Option<u64>| l.map(|l| t + l * MIN + 1000);
                match p.tasks[i][pc[i]] {
                    Step::Get { limit: l, .. } => {
                        if let Some(v) = items.pop_front() {
                            // Room freed: the oldest putter's item moves in.
                            if let Some(q) = putters.pop_front() {
                                let State::Putting(w, _) = state[q] else {
                                    unreachable!()
                                };
                                items.push_back(w);
                                logs.entry(who(q))
                                    .or_default()
                                    .push(format!("{t}: put {w}"));
                                pc[q] += 1;
                                state[q] = State::Ready(t);
                            }
                            logs.entry(who(i))
                                .or_default()
                                .push(format!("{t}: got {v}"));
                            pc[i] += 1;
                        } else {
                            getters.push_back(i);
                            state[i] = State::Getting(limit(l));
                        }
                    }
                    Step::Put {
                        value, limit: l, ..
                    } => {
                        if let Some(g) = getters.pop_front() {
                            // Handed straight to the oldest getter.
                            logs.entry(who(g))
                                .or_default()
                                .push(format!("{t}: got {value}"));
                            pc[g] += 1;
                            state[g] = State::Ready(t);
                            logs.entry(who(i))
                                .or_default()
                                .push(format!("{t}: put {value}"));
                            pc[i] += 1;
                        } else if items.len() < p.capacity && putters.is_empty() {
                            items.push_back(value);
                            logs.entry(who(i))
                                .or_default()
                                .push(format!("{t}: put {value}"));
                            pc[i] += 1;
                        } else {
                            putters.push_back(i);
                            state[i] = State::Putting(value, limit(l));
                        }
                    }
                    _ => unreachable!(),
                }
            }
            State::Getting(_) => {
                getters.retain(|&g| g != i);
                logs.entry(who(i))
                    .or_default()
                    .push(format!("{t}: get: timed out"));
                pc[i] += 1;
            }
            State::Putting(v, _) => {
                putters.retain(|&g| g != i);
                logs.entry(who(i))
                    .or_default()
                    .push(format!("{t}: put {v}: timed out"));
                pc[i] += 1;
            }
            State::Joining(_) | State::Done(_) => unreachable!(),
        }
    }
    // Whoever still waits (on the queue, or on a task that does) waits for
    // good: main stops them a minute after the last event, last task first.
    let end = last + MIN;
    for i in (0..n).rev() {
        let did = !matches!(state[i], State::Done(_));
        if did {
            logs.entry(who(i))
                .or_default()
                .push(format!("{end}: cancelled"));
            finish(
                &mut logs,
                &mut state,
                &mut pc,
                &mut joined_by_task,
                i,
                end,
                true,
            );
        }
        logs.entry("main".into())
            .or_default()
            .push(format!("stop {i} -> {did}"));
    }
    let main = logs.entry("main".into()).or_default();
    for (j, s) in state.iter().enumerate() {
        let State::Done(e) = *s else { unreachable!() };
        let what = match joined_by_task[j] {
            true => "already joined",
            false => ok_word(e),
        };
        main.push(format!("joined {j}: {what}"));
    }
    main.push(format!("left in the queue: {:?}", Vec::from(items)));
    Expected { logs, end }
}

fn ok_word(e: Ending) -> &'static str {
    if e.cancelled {
        "cancelled"
    } else {
        "ok"
    }
}

/// Ends task `i` at `at`, and with it the join that waits for it.
fn finish(
    logs: &mut BTreeMap<String, Vec<String>>,
    state: &mut [State],
    pc: &mut [usize],
    joined_by_task: &mut [bool],
    i: usize,
    at: Ms,
    cancelled: bool,
) {
    let e = Ending { cancelled };
    logs.entry(format!("task {i}"))
        .or_default()
        .push(format!("{at}: end"));
    state[i] = State::Done(e);
    for k in 0..state.len() {
        if matches!(state[k], State::Joining(j) if j == i) {
            joined_by_task[i] = true;
            logs.entry(format!("task {k}"))
                .or_default()
                .push(format!("{at}: joined {i}: {}", ok_word(e)));
            pc[k] += 1;
            state[k] = State::Ready(at);
        }
    }
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
            let queue = Rc::new(Queue::<u64>::bounded(program.capacity));
            let mut handles: Vec<Rc<JoinHandle<Result<(), TrapError>>>> = Vec::new();
            for (i, steps) in program.tasks.iter().cloned().enumerate() {
                let who = format!("task {i}");
                let logs = logs.clone();
                let joins: Vec<_> = handles.clone();
                let queue = queue.clone();
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
                            Step::Get { nth, limit } => {
                                let pause = Duration::from_millis(arrival(nth));
                                if sleep(pause).await.is_err() {
                                    return cancelled(&logs);
                                }
                                let got = match limit {
                                    Some(l) => {
                                        let l = Duration::from_secs(60 * l + 1);
                                        timeout_after(l, queue.get()).await
                                    }
                                    None => Ok(queue.get().await),
                                };
                                match got {
                                    Ok(Ok(v)) => format!("got {v}"),
                                    Err(TrapError::TimedOut(_)) => "get: timed out".to_string(),
                                    Ok(Err(TrapError::Cancelled)) => return cancelled(&logs),
                                    other => format!("get: {other:?}"),
                                }
                            }
                            Step::Put { nth, value, limit } => {
                                let pause = Duration::from_millis(arrival(nth));
                                if sleep(pause).await.is_err() {
                                    return cancelled(&logs);
                                }
                                let put = match limit {
                                    Some(l) => {
                                        let l = Duration::from_secs(60 * l + 1);
                                        timeout_after(l, queue.put(value)).await
                                    }
                                    None => Ok(queue.put(value).await),
                                };
                                match put {
                                    Ok(Ok(())) => format!("put {value}"),
                                    Err(TrapError::TimedOut(_)) => {
                                        format!("put {value}: timed out")
                                    }
                                    Ok(Err(TrapError::Cancelled)) => return cancelled(&logs),
                                    other => format!("put {value}: {other:?}"),
                                }
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
            // Whoever still waits waits for good: stop it, last task first
            // (so a task joining a waiting one is stopped before it).
            for (i, h) in handles.iter().enumerate().rev() {
                let did = trapline::traps::cancel(h.id()).unwrap();
                note(&logs, "main", format!("stop {i} -> {did}"));
            }
            for (j, h) in handles.iter().enumerate() {
                let r = h.join().await;
                note(&logs, "main", format!("joined {j}: {}", join_word(&r)));
            }
            let left: Vec<u64> = std::iter::from_fn(|| queue.try_get()).collect();
            note(&logs, "main", format!("left in the queue: {left:?}"));
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
        1 => (0u64..4).prop_map(Step::Sleep),
        1 => Just(Step::Yield),
        1 => (0u64..4, 0u64..5).prop_map(|(limit, nap)| Step::Timeout { limit, nap }),
        1 => (0u64..4, 0u64..3, 0u64..5).prop_map(|(outer, inner, nap)| Step::Nested {
            outer,
            // Never equal to `outer`.
            inner: if inner >= outer { inner + 1 } else { inner },
            nap
        }),
        1 => (0..i.max(1)).prop_map(move |j| if i == 0 { Step::Yield } else { Step::Join(j) }),
        // Numbered later, in program order.
        2 => (0u64..100, proptest::option::of(0u64..3)).prop_map(|(value, limit)| Step::Put {
            nth: 0,
            value,
            limit
        }),
        2 => proptest::option::of(0u64..3).prop_map(|limit| Step::Get { nth: 0, limit }),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (1usize..=5)
        .prop_flat_map(|n| {
            let tasks: Vec<_> = (0..n)
                .map(|i| proptest::collection::vec(step(i), 0..5))
                .collect();
            let cancels = proptest::collection::vec((0u64..10, 0..n), 0..4);
            (tasks, cancels, 1usize..=3)
        })
        .prop_map(|(mut tasks, cancels, capacity)| {
            // Each task is joined by at most one other task; queue
            // operations are numbered, and past QUEUE_OPS become yields.
            let mut taken = vec![false; tasks.len()];
            let mut ops = 0;
            for steps in &mut tasks {
                for s in steps.iter_mut() {
                    if let Step::Put { nth, .. } | Step::Get { nth, .. } = s {
                        *nth = ops;
                        ops += 1;
                        if *nth >= QUEUE_OPS {
                            *s = Step::Yield;
                        }
                    }
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
            Program {
                tasks,
                capacity,
                cancels,
            }
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
            vec![
                Step::Get {
                    nth: 0,
                    limit: None,
                },
                Step::Put {
                    nth: 1,
                    value: 7,
                    limit: Some(0),
                },
                Step::Put {
                    nth: 4,
                    value: 8,
                    limit: Some(0),
                },
            ],
            vec![
                Step::Sleep(1),
                Step::Put {
                    nth: 2,
                    value: 5,
                    limit: None,
                },
                Step::Put {
                    nth: 3,
                    value: 6,
                    limit: None,
                },
            ],
        ],
        capacity: 1,
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
    // Task 3 waits for an item; task 4's 5 goes straight to it. Task 3's 7
    // fills the queue, so task 4's 6 waits for room for good, and task 3's 8
    // waits behind it until its limit and is not added.
    assert_eq!(
        expected.logs["task 3"],
        [
            "60032: got 5",
            "60048: put 7",
            "61176: put 8: timed out",
            "61176: end"
        ]
    );
    assert_eq!(
        expected.logs["task 4"],
        [
            "60000: slept",
            "60032: put 5",
            "510002: cancelled",
            "510002: end"
        ]
    );
    assert_eq!(
        expected.logs["canceller"],
        ["270001: cancel 1 -> true", "450002: cancel 2 -> false"]
    );
    assert_eq!(
        expected.logs["main"],
        [
            "stop 4 -> true",
            "stop 3 -> false",
            "stop 2 -> false",
            "stop 1 -> false",
            "stop 0 -> false",
            "joined 0: already joined",
            "joined 1: cancelled",
            "joined 2: ok",
            "joined 3: ok",
            "joined 4: cancelled",
            "left in the queue: [7]"
        ]
    );
    let (got, stats) = run(&p, expected.end);
    assert_eq!(got, expected);
    assert_clean(&stats);
}

/// A getter cancelled while it waits leaves the line (the next getter gets
/// the item), and a putter cancelled while it waits adds nothing.
#[test]
fn interrupted_queue_waits_take_and_add_nothing() {
    let get = |nth| Step::Get { nth, limit: None };
    let put = |nth, value| Step::Put {
        nth,
        value,
        limit: None,
    };
    let p = Program {
        tasks: vec![
            vec![get(0)],
            vec![get(1)],
            vec![Step::Sleep(1), put(2, 5), put(3, 6), put(4, 7)],
            vec![Step::Sleep(2), get(5)],
        ],
        capacity: 1,
        cancels: vec![
            Cancel {
                minute: 0,
                nth: 1,
                target: 0,
            },
            Cancel {
                minute: 1,
                nth: 2,
                target: 2,
            },
        ],
    };
    let expected = model(&p);
    assert_eq!(expected.logs["task 0"], ["30001: cancelled", "30001: end"]);
    assert_eq!(expected.logs["task 1"], ["60032: got 5", "60032: end"]);
    assert_eq!(
        expected.logs["task 2"],
        [
            "60000: slept",
            "60032: put 5",
            "60096: put 6",
            "90002: cancelled",
            "90002: end"
        ]
    );
    assert_eq!(
        expected.logs["task 3"],
        ["120000: slept", "120256: got 6", "120256: end"]
    );
    assert_eq!(
        expected.logs["canceller"],
        ["30001: cancel 0 -> true", "90002: cancel 2 -> true"]
    );
    assert_eq!(
        expected.logs["main"],
        [
            "stop 3 -> false",
            "stop 2 -> false",
            "stop 1 -> false",
            "stop 0 -> false",
            "joined 0: cancelled",
            "joined 1: ok",
            "joined 2: cancelled",
            "joined 3: ok",
            "left in the queue: []"
        ]
    );
    let (got, stats) = run(&p, expected.end);
    assert_eq!(got, expected);
    assert_clean(&stats);
}
