//! TaskGroup, how its tasks end: a panic whose future also panics when
//! dropped, members whose cleanup spawns siblings, a scope body that fails,
//! a group dropped outside a join, and many members ending.

mod util;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use trapline::{shield, sleep, spawn, yield_now, TaskFailure, TaskGroup, TrapError};
use util::{entries, log, push, run_clean, run_virtual_clean, Log};

const FOREVER: Duration = Duration::from_secs(3600);
const SHORT: Duration = Duration::from_millis(5);

/// A group task whose poll panics and whose destructor panics too: the
/// group's wrapper drops the future after the first panic was caught, not
/// during an unwind (where the second panic would abort the process). The
/// group records the poll's panic and the kernel goes on.
#[test]
fn group_poll_panic_then_destructor_panic_does_not_abort() {
    /// Traps once, then panics when polled again; panics when dropped.
    struct Doomed {
        log: Log,
        polled: bool,
    }
    impl Future for Doomed {
        type Output = Result<(), ()>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if !self.polled {
                self.polled = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            panic!("poll boom");
        }
    }
    impl Drop for Doomed {
        fn drop(&mut self) {
            let panicking = std::thread::panicking();
            push(&self.log, format!("drop, panicking: {panicking}"));
            panic!("destructor boom");
        }
    }
    let log = log();
    let out = run_clean({
        let log = log.clone();
        async move {
            let group = TaskGroup::<(), ()>::new();
            let id = group
                .spawn(Doomed {
                    log: log.clone(),
                    polled: false,
                })
                .unwrap();
            let joined = group.join().await;
            push(&log, "owner goes on");
            let after = spawn(async { "still running" }).unwrap();
            (id, joined, after.join().await)
        }
    });
    let (id, joined, after) = out;
    assert_eq!(
        joined,
        Err(trapline::GroupError::Task {
            id,
            failure: TaskFailure::Panicked("poll boom".into())
        })
    );
    assert_eq!(after, Ok("still running"));
    assert_eq!(entries(&log), ["drop, panicking: false", "owner goes on"]);
}

/// A member whose cleanup spawns a sibling into the group: the sibling is
/// cancelled too, so `cancel_remaining` returns (before, the sibling was
/// never cancelled and the shielded wait lasted as long as it did).
#[test]
fn cancel_remaining_cancels_a_sibling_spawned_by_cleanup() {
    let (order, finished) = run_virtual_clean(async {
        let log = log();
        let group = TaskGroup::<&str, TrapError>::new();
        let (l, g) = (log.clone(), group.clone());
        group
            .spawn(async move {
                let r = sleep(FOREVER).await;
                push(&l, format!("first {r:?}"));
                let l2 = l.clone();
                g.spawn(async move {
                    let r = sleep(FOREVER).await;
                    push(&l2, format!("sibling {r:?}"));
                    r.map(|()| "sibling")
                })
                .unwrap();
                r.map(|()| "first")
            })
            .unwrap();
        yield_now().await.unwrap();
        group.cancel_remaining().await.unwrap();
        push(&log, "cancel_remaining returned");
        assert_eq!(group.running(), 0);
        let finished: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| (f.outcome, f.cancelled))
            .collect();
        (entries(&log), finished)
    });
    assert_eq!(
        order,
        [
            "first Err(Cancelled)",
            "sibling Err(Cancelled)",
            "cancel_remaining returned"
        ]
    );
    let cancelled = (Err(TaskFailure::Failed(TrapError::Cancelled)), true);
    assert_eq!(finished, [cancelled.clone(), cancelled]);
}

/// A `try_scope` body that fails cancels the tasks left and waits for them;
/// `scope` with the same failing body waits for them as the policy says.
#[test]
fn try_scope_body_error_cancels_the_rest() {
    let order = run_virtual_clean(async {
        let log = log();
        let group = TaskGroup::<(), TrapError>::new();
        let t0 = trapline::clock().unwrap();
        let (body, joined) = group
            .try_scope(async {
                let l = log.clone();
                group.spawn(async move {
                    let r = sleep(FOREVER).await;
                    push(&l, format!("child {r:?}"));
                    r
                })?;
                yield_now().await?;
                Err::<(), _>(TrapError::Unsupported("body failed"))
            })
            .await;
        push(&log, format!("try_scope: {body:?} {joined:?}"));
        assert_eq!(trapline::clock().unwrap(), t0, "no waiting for the child");
        let finished: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| (f.outcome, f.cancelled))
            .collect();
        assert_eq!(
            finished,
            [(Err(TaskFailure::Failed(TrapError::Cancelled)), true)]
        );
        assert!(group.spawn(async { Ok(()) }).is_err(), "over");

        // The same body under `scope`: the child is waited for, not cancelled.
        let group = TaskGroup::<(), TrapError>::new();
        let (body, joined) = group
            .scope(async {
                group.spawn(sleep(SHORT))?;
                Err::<(), _>(TrapError::Unsupported("body failed"))
            })
            .await;
        push(&log, format!("scope: {body:?} {joined:?}"));
        assert_eq!(trapline::clock().unwrap() - t0, SHORT);
        entries(&log)
    });
    assert_eq!(
        order,
        [
            "child Err(Cancelled)",
            "try_scope: Err(Unsupported(\"body failed\")) Ok(None)",
            "scope: Err(Unsupported(\"body failed\")) Ok(None)",
        ]
    );
}

/// A `try_scope` body that succeeds joins as `scope` does.
#[test]
fn try_scope_body_ok_joins_by_policy() {
    let out = run_virtual_clean(async {
        let group = TaskGroup::<u32, TrapError>::new();
        let (body, joined) = group
            .try_scope(async {
                group.spawn(async { sleep(SHORT).await.map(|()| 7) })?;
                Ok::<_, TrapError>("body ok")
            })
            .await;
        let finished: Vec<_> = group
            .take_finished()
            .into_iter()
            .map(|f| (f.outcome, f.cancelled))
            .collect();
        (body, joined, finished)
    });
    assert_eq!(out, (Ok("body ok"), Ok(None), vec![(Ok(7), false)]));
}

/// The documented limit of the cascade: an owner interrupted outside a join
/// that returns with `?` drops its group; the children are cancelled but
/// not waited for, so the owner ends first and they clean up after it.
/// Inside `try_scope` the same owner ends last.
#[test]
fn a_group_dropped_outside_a_join_does_not_wait() {
    /// An owner that spawns a child, then waits on something else.
    async fn owner(log: Log, scoped: bool) -> Result<(), TrapError> {
        let group = TaskGroup::<(), TrapError>::new();
        let body = async {
            let l = log.clone();
            group.spawn(async move {
                let r = sleep(FOREVER).await;
                push(&l, format!("child {r:?}"));
                shield(yield_now()).await?; // cleanup that waits
                push(&l, "child cleaned up");
                r
            })?;
            sleep(FOREVER).await?; // the owner is cancelled here
            Ok::<(), TrapError>(())
        };
        if scoped {
            let (body, _) = group.try_scope(body).await;
            push(&log, format!("owner ends {body:?}"));
            body
        } else {
            let r = body.await;
            push(&log, format!("owner ends {r:?}"));
            r?;
            group.join().await.ok();
            Ok(())
        }
    }
    for scoped in [false, true] {
        let order = run_virtual_clean(async move {
            let log = log();
            let task = spawn(owner(log.clone(), scoped)).unwrap();
            yield_now().await.unwrap();
            task.cancel().await.ok();
            push(&log, "owner joined");
            // Let the orphaned child finish its cleanup.
            sleep(SHORT).await.unwrap();
            entries(&log)
        });
        let expected: &[&str] = if scoped {
            &[
                "child Err(Cancelled)",
                "child cleaned up",
                "owner ends Err(Cancelled)",
                "owner joined",
            ]
        } else {
            &[
                "owner ends Err(Cancelled)",
                "child Err(Cancelled)",
                "owner joined",
                "child cleaned up",
            ]
        };
        assert_eq!(order, expected, "scoped: {scoped}");
    }
}

/// Many members ending and many cancelled: the bookkeeping keeps every
/// result exactly (it is keyed, so this is not quadratic; no timing here).
#[test]
fn ten_thousand_members_end_and_are_cancelled_exactly() {
    const N: u32 = 10_000;
    run_virtual_clean(async {
        let group = TaskGroup::<u32, TrapError>::new();
        for i in 0..N {
            group
                .spawn(async move { yield_now().await.map(|()| i) })
                .unwrap();
        }
        assert_eq!(group.running(), N as usize);
        assert_eq!(group.join().await, Ok(None));
        let mut values: Vec<u32> = group
            .take_finished()
            .into_iter()
            .map(|f| f.outcome.unwrap())
            .collect();
        values.sort_unstable();
        assert_eq!(values, (0..N).collect::<Vec<_>>());

        let group = TaskGroup::<u32, TrapError>::new();
        for i in 0..N {
            group
                .spawn(async move { sleep(FOREVER).await.map(|()| i) })
                .unwrap();
        }
        yield_now().await.unwrap();
        group.cancel_remaining().await.unwrap();
        let finished = group.take_finished();
        assert_eq!(finished.len(), N as usize);
        assert!(finished
            .iter()
            .all(|f| f.cancelled && f.outcome == Err(TaskFailure::Failed(TrapError::Cancelled))));
        assert_eq!(group.running(), 0);
    });
}
