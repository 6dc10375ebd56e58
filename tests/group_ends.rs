//! TaskGroup, how its tasks end: a panic whose future also panics when
//! dropped, members whose cleanup spawns siblings, a scope body that fails,
//! a group dropped outside a join, and many members ending.

mod util;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use trapline::{sleep, spawn, yield_now, TaskFailure, TaskGroup, TrapError};
use util::{entries, log, push, run_clean, run_virtual_clean, Log};

const FOREVER: Duration = Duration::from_secs(3600);

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
