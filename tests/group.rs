//! TaskGroup: the three join policies, completions in order, daemons,
//! cancel_remaining, interrupted waits, and the cancellation cascade in its
//! exact order; check_cancellation through a shield.

mod util;

use std::rc::Rc;
use std::time::Duration;

use trapline::sync::Event;
use trapline::{
    check_cancellation, shield, sleep, spawn, timeout_after, yield_now, GroupError, Policy,
    TaskFailure, TaskGroup, TrapError,
};
use util::{entries, log, push, run_virtual_clean, Log};

const FOREVER: Duration = Duration::from_secs(3600);
const SHORT: Duration = Duration::from_millis(5);

/// A task that waits for `go`, logs `name` and returns `value`, or logs its
/// cancellation and fails with it.
async fn member(
    log: Log,
    go: Rc<Event>,
    name: &'static str,
    value: Result<u32, &'static str>,
) -> Result<u32, &'static str> {
    match go.wait().await {
        Ok(()) => {
            push(&log, format!("{name} ends"));
            value
        }
        Err(e) => {
            push(&log, format!("{name} {e:?}"));
            Err("cancelled")
        }
    }
}

/// `next_done` gives completions in the order the tasks end, then `None`.
#[test]
fn next_done_in_completion_order() {
    run_virtual_clean(async {
        let group = TaskGroup::<u32, &str>::new();
        let events: Vec<Rc<Event>> = (0..3).map(|_| Rc::new(Event::new())).collect();
        let mut ids = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            let ev = ev.clone();
            ids.push(
                group
                    .spawn(async move { ev.wait().await.map(|()| i as u32).map_err(|_| "x") })
                    .unwrap(),
            );
        }
        let mut order = Vec::new();
        for i in [2, 0, 1] {
            events[i].set();
            let done = group.next_done().await.unwrap().unwrap();
            order.push((done.id, done.outcome));
        }
        assert_eq!(order, [(ids[2], Ok(2)), (ids[0], Ok(0)), (ids[1], Ok(1))]);
        assert!(group.next_done().await.unwrap().is_none());
        group.join().await.unwrap();
    });
}

/// A `next_done` cancelled or timed out while it waits changes nothing in
/// the group: the task still runs and its completion is still there.
#[test]
fn next_done_interrupted_while_blocked_changes_nothing() {
    run_virtual_clean(async {
        let group = TaskGroup::<u32, ()>::new();
        let go = Rc::new(Event::new());
        let g = go.clone();
        let id = group
            .spawn(async move { g.wait().await.map(|()| 9).map_err(drop) })
            .unwrap();
        let waited = timeout_after(SHORT, group.next_done()).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        let gr = group.clone();
        let owner = spawn(async move { gr.next_done().await.map(|d| d.is_some()) }).unwrap();
        yield_now().await.unwrap();
        assert_eq!(owner.cancel().await.unwrap(), Err(TrapError::Cancelled));
        assert_eq!(group.running(), 1);
        go.set();
        let done = group.next_done().await.unwrap().unwrap();
        assert_eq!((done.id, done.outcome, done.cancelled), (id, Ok(9), false));
    });
}

/// Policy All: the join waits for every task; a success leaves all values
/// reachable in completion order.
#[test]
fn all_waits_for_every_task() {
    let order = run_virtual_clean(async {
        let (log, go) = (log(), Rc::new(Event::new()));
        let group = TaskGroup::new();
        for (name, v) in [("a", 1), ("b", 2)] {
            group
                .spawn(member(log.clone(), go.clone(), name, Ok(v)))
                .unwrap();
        }
        go.set();
        assert_eq!(group.join().await, Ok(None));
        let values: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| f.outcome)
            .collect();
        assert_eq!(values, [Ok(1), Ok(2)]);
        entries(&log)
    });
    assert_eq!(order, ["a ends", "b ends"]);
}

/// Policy All: the first failure ends the join; the rest are cancelled in
/// spawn order and waited for; every other outcome stays reachable.
#[test]
fn all_first_failure_cancels_the_rest() {
    let order = run_virtual_clean(async {
        let log = log();
        let (go, never) = (Rc::new(Event::new()), Rc::new(Event::new()));
        let group = TaskGroup::new();
        group
            .spawn(member(log.clone(), never.clone(), "a", Ok(1)))
            .unwrap();
        let bad = group
            .spawn(member(log.clone(), go.clone(), "bad", Err("boom")))
            .unwrap();
        group
            .spawn(member(log.clone(), never.clone(), "c", Ok(3)))
            .unwrap();
        go.set();
        let failure = TaskFailure::Failed("boom");
        assert_eq!(
            group.join().await,
            Err(GroupError::Task { id: bad, failure })
        );
        assert_eq!(group.running(), 0);
        let rest: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| (f.outcome, f.cancelled))
            .collect();
        assert_eq!(rest, vec![(Err(TaskFailure::Failed("cancelled")), true); 2]);
        entries(&log)
    });
    assert_eq!(order, ["bad ends", "a Cancelled", "c Cancelled"]);
}

/// Policy Any: the first task to end decides, failure or not.
#[test]
fn any_first_to_end_decides() {
    run_virtual_clean(async {
        let log = log();
        let (go, never) = (Rc::new(Event::new()), Rc::new(Event::new()));
        let group = TaskGroup::with_policy(Policy::Any);
        group
            .spawn(member(log.clone(), never.clone(), "slow", Ok(1)))
            .unwrap();
        group
            .spawn(member(log.clone(), go.clone(), "fast", Ok(2)))
            .unwrap();
        go.set();
        assert_eq!(group.join().await, Ok(Some(2)));
        assert_eq!(entries(&log), ["fast ends", "slow Cancelled"]);
        let failing = TaskGroup::<u32, &str>::with_policy(Policy::Any);
        let id = failing.spawn(async { Err("no") }).unwrap();
        failing
            .spawn(member(log.clone(), never.clone(), "other", Ok(3)))
            .unwrap();
        let failure = TaskFailure::Failed("no");
        assert_eq!(failing.join().await, Err(GroupError::Task { id, failure }));
    });
}

/// Policy FirstResult: failures are skipped until a task succeeds; if all
/// fail, the first failure is reported; a panic is a failure.
#[test]
fn first_result_skips_failures() {
    run_virtual_clean(async {
        let log = log();
        let (go, never) = (Rc::new(Event::new()), Rc::new(Event::new()));
        let group = TaskGroup::with_policy(Policy::FirstResult);
        group.spawn(async { Err("early failure") }).unwrap();
        group
            .spawn(member(log.clone(), go.clone(), "good", Ok(7)))
            .unwrap();
        group
            .spawn(member(log.clone(), never.clone(), "slow", Ok(8)))
            .unwrap();
        yield_now().await.unwrap();
        go.set();
        assert_eq!(group.join().await, Ok(Some(7)));
        let rest: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| f.outcome)
            .collect();
        assert_eq!(
            rest,
            [
                Err(TaskFailure::Failed("early failure")),
                Err(TaskFailure::Failed("cancelled"))
            ]
        );

        let all_fail = TaskGroup::<u32, &str>::with_policy(Policy::FirstResult);
        let first = all_fail.spawn(async { panic!("first") }).unwrap();
        all_fail.spawn(async { Err("second") }).unwrap();
        let failure = TaskFailure::Panicked("first".to_string());
        assert_eq!(
            all_fail.join().await,
            Err(GroupError::Task { id: first, failure })
        );
    });
}

/// Daemons are cancelled when the group ends and are never a result.
#[test]
fn daemons_are_cancelled_and_not_results() {
    let order = run_virtual_clean(async {
        let log = log();
        let group = TaskGroup::<u32, ()>::new();
        let l = log.clone();
        group
            .spawn_daemon(async move {
                let slept = sleep(FOREVER).await;
                push(&l, format!("daemon {slept:?}"));
            })
            .unwrap();
        group.spawn(async { Ok(1) }).unwrap();
        assert_eq!(group.join().await, Ok(None));
        let values: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| f.outcome)
            .collect();
        assert_eq!(values, [Ok(1)]);
        assert!(group.spawn(async { Ok(2) }).is_err(), "joined: over");
        entries(&log)
    });
    assert_eq!(order, ["daemon Err(Cancelled)"]);
}

/// Cancelling the owner of a group cancels the children first: in spawn
/// order, a grandchild before its parent, the owner last.
#[test]
fn cancel_cascades_children_first_in_a_defined_order() {
    let order = run_virtual_clean(async {
        let log = log();
        let l = log.clone();
        let owner = spawn(async move {
            let group = TaskGroup::<(), ()>::new();
            let l1 = l.clone();
            group
                .spawn(async move {
                    let r = sleep(FOREVER).await;
                    push(&l1, format!("child 1 {r:?}"));
                    Ok(())
                })
                .unwrap();
            let l2 = l.clone();
            group
                .spawn(async move {
                    let inner = TaskGroup::<(), ()>::new();
                    let lg = l2.clone();
                    inner
                        .spawn(async move {
                            let r = sleep(FOREVER).await;
                            push(&lg, format!("grandchild {r:?}"));
                            Ok(())
                        })
                        .unwrap();
                    let r = inner.join().await;
                    push(&l2, format!("child 2 {r:?}"));
                    Ok(())
                })
                .unwrap();
            let l3 = l.clone();
            group
                .spawn(async move {
                    let r = sleep(FOREVER).await;
                    push(&l3, format!("child 3 {r:?}"));
                    Ok(())
                })
                .unwrap();
            let r = group.join().await;
            push(&l, format!("owner {r:?}"));
            assert_eq!(group.running(), 0);
        })
        .unwrap();
        for _ in 0..3 {
            yield_now().await.unwrap();
        }
        owner.cancel().await.unwrap();
        entries(&log)
    });
    assert_eq!(
        order,
        [
            "child 1 Err(Cancelled)",
            "child 3 Err(Cancelled)",
            "grandchild Err(Cancelled)",
            "child 2 Err(Interrupted(Cancelled))",
            "owner Err(Interrupted(Cancelled))",
        ]
    );
}

/// Leaving a scope through a timeout cancels the tasks left and waits for
/// them: none outlives the group.
#[test]
fn scope_left_by_a_timeout_cancels_and_waits() {
    let order = run_virtual_clean(async {
        let log = log();
        let group = TaskGroup::<(), ()>::new();
        let scoped = timeout_after(
            SHORT,
            group.scope(async {
                for name in ["a", "b"] {
                    let l = log.clone();
                    group
                        .spawn(async move {
                            let r = sleep(FOREVER).await;
                            push(&l, format!("{name} {r:?}"));
                            // Cleanup that waits: allowed inside a shield.
                            shield(yield_now()).await.unwrap();
                            push(&l, format!("{name} cleaned up"));
                            Ok(())
                        })
                        .unwrap();
                }
            }),
        )
        .await;
        assert!(matches!(scoped, Err(TrapError::TimedOut(_))));
        assert_eq!(group.running(), 0);
        push(&log, "scope left");
        entries(&log)
    });
    assert_eq!(
        order,
        [
            "a Err(Cancelled)",
            "b Err(Cancelled)",
            "a cleaned up",
            "b cleaned up",
            "scope left"
        ]
    );
}

/// `cancel_remaining` cancels and waits; the completions are marked.
#[test]
fn cancel_remaining_cancels_and_waits() {
    run_virtual_clean(async {
        let group = TaskGroup::<(), TrapError>::new();
        for _ in 0..3 {
            group.spawn(sleep(FOREVER)).unwrap();
        }
        yield_now().await.unwrap();
        group.cancel_remaining().await.unwrap();
        assert_eq!(group.running(), 0);
        let all: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| (f.outcome, f.cancelled))
            .collect();
        assert_eq!(
            all,
            vec![(Err(TaskFailure::Failed(TrapError::Cancelled)), true); 3]
        );
    });
}

/// Inside a shield a cancel is held back from waits, but
/// `check_cancellation` sees it; after the shield, the next wait gets it.
#[test]
fn check_cancellation_sees_through_a_shield() {
    let order = run_virtual_clean(async {
        let log = log();
        let l = log.clone();
        let task = spawn(async move {
            push(&l, format!("before {:?}", check_cancellation()));
            let r = sleep(FOREVER).await;
            push(&l, format!("sleep {r:?}"));
            shield(async {
                let r = yield_now().await;
                push(&l, format!("shielded wait {r:?}"));
                push(&l, format!("check {:?}", check_cancellation()));
            })
            .await;
            let r = yield_now().await;
            push(&l, format!("after shield {r:?}"));
        })
        .unwrap();
        yield_now().await.unwrap();
        task.cancel().await.unwrap();
        assert_eq!(check_cancellation(), Ok(()));
        entries(&log)
    });
    assert_eq!(
        order,
        [
            "before Ok(())",
            "sleep Err(Cancelled)",
            "shielded wait Ok(())",
            "check Err(Cancelled)",
            "after shield Err(Cancelled)",
        ]
    );
}

/// check_cancellation reports a passed limit, and the timeout block
/// reports its own expiry when that error is returned.
#[test]
fn check_cancellation_reports_a_passed_limit() {
    run_virtual_clean(async {
        let out = timeout_after(SHORT, async {
            shield(sleep(Duration::from_millis(20))).await?;
            check_cancellation()
        })
        .await;
        assert!(matches!(out, Err(TrapError::TimedOut(_))));
    });
}

/// A cancel that arrives while the task waits inside a shield does not
/// interrupt that wait; it is delivered at the first wait after the shield.
#[test]
fn a_cancel_arriving_inside_a_shield_is_delivered_after_it() {
    let order = run_virtual_clean(async {
        let log = log();
        let go = Rc::new(Event::new());
        let (l, g) = (log.clone(), go.clone());
        let task = spawn(async move {
            shield(async {
                let r = g.wait().await;
                push(&l, format!("shielded wait {r:?}"));
            })
            .await;
            push(&l, "shield left");
            let r = yield_now().await;
            push(&l, format!("first wait after {r:?}"));
        })
        .unwrap();
        yield_now().await.unwrap();
        let cancelled = trapline::traps::cancel(task.id()).unwrap();
        push(&log, format!("cancel sent {cancelled}"));
        yield_now().await.unwrap();
        go.set();
        task.join().await.unwrap();
        entries(&log)
    });
    assert_eq!(
        order,
        [
            "cancel sent true",
            "shielded wait Ok(())",
            "shield left",
            "first wait after Err(Cancelled)",
        ]
    );
}

/// A task of a group waiting on its own group would wait for itself: it is
/// refused with a clear error instead of hanging.
#[test]
fn a_member_waiting_on_its_own_group_is_refused() {
    run_virtual_clean(async {
        let group = TaskGroup::<bool, ()>::new();
        let g = group.clone();
        group
            .spawn(async move {
                let joined = g.join().await;
                let next = g.next_done().await;
                Ok(matches!(
                    joined,
                    Err(GroupError::Interrupted(TrapError::Unsupported(_)))
                ) && matches!(next, Err(TrapError::Unsupported(_))))
            })
            .unwrap();
        assert_eq!(group.join().await, Ok(None));
        let refused: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| f.outcome)
            .collect();
        assert_eq!(refused, [Ok(true)]);
    });
}

/// A task of a group may cancel the rest of it (Curio's "first one done
/// cancels the others" by hand); it is spared and goes on.
#[test]
fn a_member_cancels_the_rest_of_its_group() {
    run_virtual_clean(async {
        let group = TaskGroup::<&str, TrapError>::new();
        let g = group.clone();
        for _ in 0..2 {
            group
                .spawn(async { sleep(FOREVER).await.map(|()| "slept") })
                .unwrap();
        }
        group
            .spawn(async move {
                yield_now().await?;
                g.cancel_remaining().await?;
                assert_eq!(g.running(), 1, "only the canceller is left");
                Ok("cancelled the others")
            })
            .unwrap();
        assert_eq!(group.join().await, Ok(None));
        let all: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| (f.outcome, f.cancelled))
            .collect();
        assert_eq!(
            all,
            [
                (Err(TaskFailure::Failed(TrapError::Cancelled)), true),
                (Err(TaskFailure::Failed(TrapError::Cancelled)), true),
                (Ok("cancelled the others"), false),
            ]
        );
    });
}
