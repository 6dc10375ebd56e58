//! Event, Lock, Semaphore and Condition: FIFO order, and for every blocking
//! call a cancel and a timeout while blocked, with the primitive's state
//! asserted exactly afterwards.

mod util;

use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use trapline::sync::{Condition, Event, Lock, Semaphore};
use trapline::{spawn, timeout_after, yield_now, TrapError};
use util::{entries, log, push, run_virtual_clean};

const SHORT: Duration = Duration::from_millis(5);

/// Lets every task spawned so far run up to its first wait.
async fn settle() {
    for _ in 0..3 {
        yield_now().await.unwrap();
    }
}

/// A held lock is handed to its waiters in the order they queued, and the
/// owner is always the task it was handed to.
#[test]
fn lock_is_handed_over_in_fifo_order() {
    let order = run_virtual_clean(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await.unwrap();
        let mut tasks = Vec::new();
        for name in ["a", "b", "c"] {
            let (lock, log) = (lock.clone(), log.clone());
            tasks.push(
                spawn(async move {
                    let _guard = lock.acquire().await.unwrap();
                    assert_eq!(lock.owner(), Some(trapline::current().unwrap()));
                    push(&log, name);
                    yield_now().await.unwrap();
                })
                .unwrap(),
            );
        }
        settle().await;
        assert_eq!(lock.waiting(), 3);
        drop(guard);
        assert_eq!(lock.owner(), Some(tasks[0].id()), "handed to the oldest");
        assert!(lock.try_acquire().is_none(), "no barging past the line");
        for t in &tasks {
            t.join().await.unwrap();
        }
        assert!(!lock.locked());
        entries(&log)
    });
    assert_eq!(order, ["a", "b", "c"]);
}

/// A waiter cancelled while blocked leaves the line; the holder and the
/// other waiters are untouched, and the lock ends up free.
#[test]
fn lock_acquire_cancelled_while_blocked() {
    run_virtual_clean(async {
        let lock = Rc::new(Lock::new());
        let guard = lock.acquire().await.unwrap();
        let me = trapline::current().unwrap();
        let l = lock.clone();
        let waiter = spawn(async move { l.acquire().await.map(drop) }).unwrap();
        let l = lock.clone();
        let second = spawn(async move { l.acquire().await.map(drop) }).unwrap();
        settle().await;
        assert_eq!(lock.waiting(), 2);
        assert_eq!(waiter.cancel().await.unwrap(), Err(TrapError::Cancelled));
        assert_eq!((lock.owner(), lock.waiting()), (Some(me), 1));
        drop(guard);
        assert_eq!(lock.owner(), Some(second.id()));
        second.join().await.unwrap().unwrap();
        assert!(!lock.locked());
    });
}

/// A timed-out acquire gives up its place and holds nothing.
#[test]
fn lock_acquire_timed_out_while_blocked() {
    run_virtual_clean(async {
        let lock = Lock::new();
        let guard = lock.acquire().await.unwrap();
        let waited = timeout_after(SHORT, lock.acquire()).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        assert_eq!((lock.locked(), lock.waiting()), (true, 0));
        drop(guard);
        assert_eq!((lock.locked(), lock.owner()), (false, None));
    });
}

/// The holder releases to a waiter and cancels it in the same breath: the
/// waiter still takes the lock (its leaf can make progress), sees the cancel
/// at its next wait, and its guard passes the lock on. Never stranded.
#[test]
fn lock_handed_to_a_waiter_cancelled_at_the_same_moment_passes_on() {
    let order = run_virtual_clean(async {
        let lock = Rc::new(Lock::new());
        let log = log();
        let guard = lock.acquire().await.unwrap();
        let (l, g) = (lock.clone(), log.clone());
        let first = spawn(async move {
            let held = l.acquire().await;
            push(&g, format!("first acquire ok: {}", held.is_ok()));
            let next = yield_now().await;
            push(&g, format!("first then: {next:?}"));
        })
        .unwrap();
        let (l, g) = (lock.clone(), log.clone());
        let second = spawn(async move {
            let _held = l.acquire().await.unwrap();
            push(&g, "second holds");
        })
        .unwrap();
        settle().await;
        drop(guard); // handed to `first` ...
        first.cancel().await.unwrap(); // ... which is cancelled at once
        second.join().await.unwrap();
        assert_eq!((lock.locked(), lock.waiting()), (false, 0));
        entries(&log)
    });
    assert_eq!(
        order,
        [
            "first acquire ok: true",
            "first then: Err(Cancelled)",
            "second holds"
        ]
    );
}

/// A waiter that was handed the lock but dropped before it looked (a
/// select that lost) passes the lock to the next waiter.
#[test]
fn lock_handed_to_a_dropped_waiter_passes_on() {
    run_virtual_clean(async {
        let lock = Rc::new(Lock::new());
        let go = Rc::new(Event::new());
        let guard = lock.acquire().await.unwrap();
        let (l, g) = (lock.clone(), go.clone());
        let dropper = spawn(async move {
            let mut acquire = Box::pin(l.acquire());
            // Poll once: it queues up, then is left pending.
            poll_fn(|cx| {
                assert!(acquire.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            g.wait().await.unwrap();
            drop(acquire); // handed the lock, never looked
        })
        .unwrap();
        let l = lock.clone();
        let next = spawn(async move { l.acquire().await.map(drop) }).unwrap();
        settle().await;
        assert_eq!(lock.waiting(), 2);
        drop(guard);
        assert_eq!(lock.owner(), Some(dropper.id()));
        go.set();
        dropper.join().await.unwrap();
        // Stranded, `next` would wait forever: the limit turns that into a failure.
        let joined = timeout_after(Duration::from_secs(10), next.join()).await;
        assert_eq!(joined, Ok(Ok(Ok(()))), "passed on, not stranded");
        assert!(!lock.locked());
    });
}

/// Permits go to waiters in FIFO order; cancelled and timed-out waiters
/// leave the line and take no permit.
#[test]
fn semaphore_fifo_cancel_and_timeout() {
    let order = run_virtual_clean(async {
        let sem = Rc::new(Semaphore::new(1));
        let log = log();
        let permit = sem.acquire().await.unwrap();
        let mut tasks = Vec::new();
        for name in ["a", "b", "c"] {
            let (s, g) = (sem.clone(), log.clone());
            tasks.push(
                spawn(async move {
                    let _p = s.acquire().await?;
                    push(&g, name);
                    Ok::<(), TrapError>(())
                })
                .unwrap(),
            );
        }
        settle().await;
        assert_eq!(sem.waiting(), 3);
        assert_eq!(tasks[1].cancel().await.unwrap(), Err(TrapError::Cancelled));
        assert_eq!((sem.available(), sem.waiting()), (0, 2));
        let waited = timeout_after(SHORT, sem.acquire()).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        assert_eq!((sem.available(), sem.waiting()), (0, 2));
        drop(permit);
        for t in [&tasks[0], &tasks[2]] {
            t.join().await.unwrap().unwrap();
        }
        assert_eq!((sem.available(), sem.waiting()), (1, 0));
        entries(&log)
    });
    assert_eq!(order, ["a", "c"]);
}

/// `set` wakes every waiter in the order they waited, even if the event is
/// cleared before they run; cancelled and timed-out waiters leave.
#[test]
fn event_set_wakes_all_and_interrupted_waiters_leave() {
    let order = run_virtual_clean(async {
        let event = Rc::new(Event::new());
        let log = log();
        let mut tasks = Vec::new();
        for name in ["a", "b", "c"] {
            let (e, g) = (event.clone(), log.clone());
            tasks.push(
                spawn(async move {
                    e.wait().await?;
                    push(&g, name);
                    Ok::<(), TrapError>(())
                })
                .unwrap(),
            );
        }
        settle().await;
        assert_eq!(event.waiting(), 3);
        assert_eq!(tasks[0].cancel().await.unwrap(), Err(TrapError::Cancelled));
        assert_eq!(event.waiting(), 2);
        let waited = timeout_after(SHORT, event.wait()).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        assert_eq!(event.waiting(), 2);
        event.set();
        event.clear();
        for t in &tasks[1..] {
            t.join().await.unwrap().unwrap();
        }
        assert!(!event.is_set());
        entries(&log)
    });
    assert_eq!(order, ["b", "c"]);
}

/// `notify(1)` wakes the oldest waiter, which returns holding the lock;
/// an interrupted wait returns without the lock and leaves the line.
#[test]
fn condition_notify_order_cancel_and_timeout() {
    let order = run_virtual_clean(async {
        let cond = Rc::new(Condition::new());
        let log = log();
        let mut tasks = Vec::new();
        for name in ["a", "b", "c"] {
            let (c, g) = (cond.clone(), log.clone());
            tasks.push(
                spawn(async move {
                    let guard = c.lock().await?;
                    let _guard = c.wait(guard).await?;
                    assert!(c.locked());
                    push(&g, name);
                    Ok::<(), TrapError>(())
                })
                .unwrap(),
            );
        }
        settle().await;
        assert_eq!((cond.waiting(), cond.locked()), (3, false));
        assert_eq!(tasks[0].cancel().await.unwrap(), Err(TrapError::Cancelled));
        assert_eq!((cond.waiting(), cond.locked()), (2, false));
        let guard = cond.lock().await.unwrap();
        let waited = timeout_after(SHORT, cond.wait(guard)).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        assert_eq!((cond.waiting(), cond.locked()), (2, false));
        assert_eq!(cond.notify(1), 1);
        tasks[1].join().await.unwrap().unwrap();
        assert_eq!(cond.notify_all(), 1);
        tasks[2].join().await.unwrap().unwrap();
        assert_eq!((cond.waiting(), cond.locked()), (0, false));
        entries(&log)
    });
    assert_eq!(order, ["b", "c"]);
}

/// A guard of another lock is refused with a clear error, not a panic.
#[test]
fn condition_wait_with_a_foreign_guard_is_refused() {
    run_virtual_clean(async {
        let (cond, other) = (Condition::new(), Lock::new());
        let guard = other.acquire().await.unwrap();
        let refused = cond.wait(guard).await.map(drop);
        assert!(matches!(refused, Err(TrapError::Unsupported(_))));
        assert_eq!((cond.waiting(), other.locked()), (0, false));
    });
}

/// `wait_for` re-checks its predicate after each notify and keeps waiting
/// (releasing the lock) while it is false; it returns holding the lock.
#[test]
fn condition_wait_for_rechecks_after_each_notify() {
    let order = run_virtual_clean(async {
        let cond = Rc::new(Condition::new());
        let count = Rc::new(std::cell::Cell::new(0));
        let log = log();
        let (c, n, g) = (cond.clone(), count.clone(), log.clone());
        let waiter = spawn(async move {
            let guard = c.lock().await?;
            let _guard = c
                .wait_for(guard, || {
                    push(&g, format!("check {}", n.get()));
                    n.get() >= 2
                })
                .await?;
            assert!(c.locked());
            push(&g, "done");
            Ok::<(), TrapError>(())
        })
        .unwrap();
        for _ in 0..2 {
            settle().await;
            assert_eq!(cond.waiting(), 1);
            let guard = cond.lock().await.unwrap();
            count.set(count.get() + 1);
            cond.notify(1);
            drop(guard);
        }
        waiter.join().await.unwrap().unwrap();
        assert_eq!((cond.waiting(), cond.locked()), (0, false));
        entries(&log)
    });
    assert_eq!(order, ["check 0", "check 1", "check 2", "done"]);
}

/// A semaphore of 2 lets two in without waiting; the third waits for a
/// release, and a task holding a permit when cancelled gives it back.
#[test]
fn semaphore_counts_permits_and_a_cancelled_holder_gives_its_back() {
    run_virtual_clean(async {
        let sem = Rc::new(Semaphore::new(2));
        let first = sem.acquire().await.unwrap();
        let s = sem.clone();
        let holder = spawn(async move {
            let _permit = s.acquire().await?;
            trapline::sleep(Duration::from_secs(3600)).await
        })
        .unwrap();
        settle().await;
        assert_eq!((sem.available(), sem.waiting()), (0, 0));
        assert!(sem.try_acquire().is_none());
        assert_eq!(holder.cancel().await.unwrap(), Err(TrapError::Cancelled));
        assert_eq!(
            sem.available(),
            1,
            "the cancelled holder's permit came back"
        );
        drop(first);
        assert_eq!(sem.available(), 2);
    });
}

/// An acquire that loses a `select!` is dropped while queued: it leaves the
/// line, and the lock goes to the next waiter, not to the dropped one.
#[test]
fn lock_acquire_dropped_by_a_select_leaves_the_line() {
    use futures::FutureExt;
    run_virtual_clean(async {
        let lock = Rc::new(Lock::new());
        let guard = lock.acquire().await.unwrap();
        let l = lock.clone();
        let loser = spawn(async move {
            futures::select! {
                _ = l.acquire().fuse() => "acquired",
                _ = trapline::sleep(SHORT).fuse() => "slept",
            }
        })
        .unwrap();
        let l = lock.clone();
        let next = spawn(async move { l.acquire().await.map(|_| ()) }).unwrap();
        settle().await;
        assert_eq!(lock.waiting(), 2);
        assert_eq!(loser.join().await.unwrap(), "slept");
        assert_eq!(lock.waiting(), 1);
        drop(guard);
        assert_eq!(lock.owner(), Some(next.id()));
        next.join().await.unwrap().unwrap();
        assert!(!lock.locked());
    });
}

/// Regression: a waiter served in the same poll in which it queued (two
/// branches of one `join!`, one waiting, the other releasing) has no park
/// yet for `SchedWake` to find; it is woken through its waker instead.
#[test]
fn waiter_served_before_its_task_parked_is_woken() {
    run_virtual_clean(async {
        let (lock, event) = (Rc::new(Lock::new()), Rc::new(Event::new()));
        let (l, e) = (lock.clone(), event.clone());
        let task = spawn(async move {
            let guard = l.acquire().await.unwrap();
            let (acquired, (), waited, ()) =
                futures::join!(l.acquire(), async { drop(guard) }, e.wait(), async {
                    e.set()
                });
            waited.unwrap();
            acquired.map(drop)
        })
        .unwrap();
        // Unwoken, the task would sleep until something else resumed it:
        // give it a few passes, then look.
        for _ in 0..10 {
            yield_now().await.unwrap();
        }
        assert!(task.is_finished(), "woken, not stranded");
        task.join().await.unwrap().unwrap();
        assert!(!lock.locked());
    });
}
