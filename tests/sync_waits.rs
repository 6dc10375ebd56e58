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
            assert_eq!(
                (cond.waiting(), cond.locked(), other.locked()),
                (0, false, false)
            );
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

/// Regression: a getter dropped after it was handed an item (a `select!`
/// whose other branch won in the same pass) gives the item back to the
/// front of the queue without the queue ever holding more than its
/// capacity: the handed item kept its place, so the next `put` waited.
#[test]
fn queue_item_given_back_by_a_dropped_getter_never_exceeds_capacity() {
    use futures::FutureExt;
    let order = run_virtual_clean(async {
        let queue = Rc::new(Queue::bounded(1));
        let event = Rc::new(trapline::sync::Event::new());
        let (q, e) = (queue.clone(), event.clone());
        let getter = spawn(async move {
            futures::select_biased! {
                () = e.wait().map(Result::unwrap).fuse() => "event won",
                _ = q.get().fuse() => "got",
            }
        })
        .unwrap();
        settle().await;
        assert_eq!(queue.getters(), 1);
        // Handed to the waiting getter: the queue is empty but full.
        assert_eq!(queue.try_put(1), Ok(()));
        assert_eq!((queue.len(), queue.is_full()), (0, true));
        assert_eq!(queue.try_put(2), Err(2));
        let q = queue.clone();
        let putter = spawn(async move { q.put(2).await }).unwrap();
        event.set();
        assert_eq!(getter.join().await.unwrap(), "event won");
        settle().await;
        // Given back into the place it kept: one item, the putter waits.
        assert_eq!(
            (queue.len(), queue.putters(), queue.is_full()),
            (1, 1, true)
        );
        let mut got = vec![queue.get().await.unwrap()];
        assert_eq!(
            (queue.len(), queue.putters()),
            (1, 0),
            "2 admitted, not more"
        );
        got.push(queue.get().await.unwrap());
        putter.join().await.unwrap().unwrap();
        assert_eq!((queue.len(), queue.unfinished()), (0, 2));
        got
    });
    assert_eq!(order, [1, 2]);
}

/// A permit handed to an acquire that a `select!` then drops (its other
/// branch won in the same pass) passes on to the next waiter: nothing is
/// stranded, and the count is exact afterwards.
#[test]
fn semaphore_permit_handed_to_a_dropped_acquire_passes_on() {
    use futures::FutureExt;
    run_virtual_clean(async {
        let sem = Rc::new(Semaphore::new(1));
        let held = sem.acquire().await.unwrap();
        let event = Rc::new(trapline::sync::Event::new());
        let (s, e) = (sem.clone(), event.clone());
        let loser = spawn(async move {
            futures::select_biased! {
                () = e.wait().map(Result::unwrap).fuse() => "event won",
                _ = s.acquire().fuse() => "acquired",
            }
        })
        .unwrap();
        settle().await;
        let s = sem.clone();
        let next = spawn(async move { s.acquire().await.map(drop) }).unwrap();
        settle().await;
        assert_eq!(sem.waiting(), 2);
        drop(held); // handed to the loser's acquire
        event.set(); // which loses the select in the same pass
        assert_eq!(loser.join().await.unwrap(), "event won");
        next.join().await.unwrap().unwrap();
        assert_eq!((sem.available(), sem.waiting()), (1, 0));
    });
}
