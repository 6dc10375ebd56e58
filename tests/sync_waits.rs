//! Sync primitives, the edges of a wait: `Condition::wait_for` refused,
//! cancelled and timed out while blocked; a semaphore permit handed to an
//! acquire that a `select!` then drops; a queue getter dropped after it was
//! handed an item.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use trapline::sync::{Condition, Lock, Queue, Semaphore};
use trapline::{spawn, timeout_after, yield_now, TrapError};
use util::{entries, log, push, run_virtual_clean};

const SHORT: Duration = Duration::from_millis(5);

/// Lets every task spawned so far run up to its first wait.
async fn settle() {
    for _ in 0..3 {
        yield_now().await.unwrap();
    }
}

/// Regression: `wait_for` refuses a guard of another lock as `wait` does,
/// before it asks the predicate (it used to wait with it, releasing the
/// other lock and taking the condition's).
#[test]
fn condition_wait_for_with_a_foreign_guard_is_refused() {
    run_virtual_clean(async {
        let (cond, other) = (Condition::new(), Lock::new());
        let asked = Cell::new(0);
        for holds in [false, true] {
            let guard = other.acquire().await.unwrap();
            let refused = cond
                .wait_for(guard, || {
                    asked.set(asked.get() + 1);
                    holds
                })
                .await
                .map(drop);
            assert!(matches!(refused, Err(TrapError::Unsupported(_))));
            assert_eq!((cond.waiting(), cond.locked(), other.locked()), (0, false, false));
        }
        assert_eq!(asked.get(), 0);
    });
}

/// `wait_for` cancelled while blocked returns `Cancelled` without the lock
/// and leaves the line; timed out, the same with `TimedOut`. The predicate
/// is not asked again after the interrupt.
#[test]
fn condition_wait_for_cancelled_or_timed_out_while_blocked() {
    let order = run_virtual_clean(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let (c, g) = (cond.clone(), log.clone());
        let waiter = spawn(async move {
            let guard = c.lock().await?;
            let r = c
                .wait_for(guard, || {
                    push(&g, "check");
                    false
                })
                .await
                .map(drop);
            push(&g, format!("waiter {r:?}"));
            r
        })
        .unwrap();
        settle().await;
        assert_eq!((cond.waiting(), cond.locked()), (1, false));
        assert_eq!(waiter.cancel().await.unwrap(), Err(TrapError::Cancelled));
        assert_eq!((cond.waiting(), cond.locked()), (0, false));

        let guard = cond.lock().await.unwrap();
        let l = log.clone();
        let waited = timeout_after(
            SHORT,
            cond.wait_for(guard, || {
                push(&l, "check");
                false
            }),
        )
        .await
        .map(drop);
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        assert_eq!((cond.waiting(), cond.locked()), (0, false));
        push(&log, "timed out");
        entries(&log)
    });
    assert_eq!(
        order,
        ["check", "waiter Err(Cancelled)", "check", "timed out"]
    );
}
