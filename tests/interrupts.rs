//! How interrupts reach leaves: every leaf waiting when a cancel or a
//! timeout arrives is owed it; a leaf that can make progress completes
//! normally and leaves the interrupt for the next trap; nested timeouts keep
//! their expiries apart; a timeout follows its future to another task; a
//! join that is interrupted keeps its handle.
//!
//! Nothing here asserts elapsed time: hour-long sleeps stand for "forever",
//! and a hang would show as the test never ending.

mod util;

use std::cell::RefCell;
use std::future::{pending, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::task::{waker, ArcWake};
use trapline::{clock, sleep, sleep_until, spawn, timeout_after, yield_now, JoinError, TrapError};
use util::{run_clean, run_virtual_clean, tcp_pair};

const HOUR: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A timeout over a `join!` of two waiting sleeps fails both of them, so the
/// block ends at its limit instead of when the slower branch would.
#[test]
fn timeout_reaches_every_waiting_leaf_of_a_join() {
    let (out, branches) = run_virtual_clean(async {
        let branches = Rc::new(RefCell::new(None));
        let seen = branches.clone();
        let out = timeout_after(ms(10), async move {
            let both = futures::join!(sleep(HOUR), sleep(HOUR));
            *seen.borrow_mut() = Some(both);
        })
        .await;
        let both = branches.borrow_mut().take();
        (out, both)
    });
    let id = match out {
        Err(TrapError::TimedOut(id)) => id,
        other => panic!("expected the block's own expiry, got {other:?}"),
    };
    assert_eq!(
        branches,
        Some((Err(TrapError::TimedOut(id)), Err(TrapError::TimedOut(id))))
    );
}

/// Cancelling a task parked in a `join!` of two sleeps fails both sleeps, so
/// the task ends at once.
#[test]
fn cancel_reaches_every_waiting_leaf_of_a_join() {
    let out = run_virtual_clean(async {
        let task = spawn(async { futures::join!(sleep(HOUR), sleep(HOUR)) }).unwrap();
        yield_now().await.unwrap(); // let it park
        task.cancel().await
    });
    assert_eq!(
        out,
        Ok((Err(TrapError::Cancelled), Err(TrapError::Cancelled)))
    );
}

/// A leaf owed a cancellation that can make progress instead (its data
/// arrived before it ran) completes normally; the cancellation then goes to
/// the next leaf that traps.
#[test]
fn owed_cancel_left_by_a_leaf_that_progressed_goes_to_the_next_trap() {
    let out = run_virtual_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let reader = spawn(async move {
            let mut buf = [0; 5];
            let read = server.read(&mut buf).await.map(|n| buf[..n].to_vec());
            let next = sleep(HOUR).await;
            (read.map_err(|e| e.to_string()), next)
        })
        .unwrap();
        yield_now().await.unwrap(); // the reader parks at its read
        client.write_all(b"hello").await.unwrap();
        // Cancel before the reader runs again: its read is owed the cancel,
        // but the bytes are there, so the read completes.
        std::thread::sleep(ms(5)); // let the bytes cross loopback
        reader.cancel().await
    });
    assert_eq!(out, Ok((Ok(b"hello".to_vec()), Err(TrapError::Cancelled))));
}

/// A retry loop around an inner timeout ends when the outer limit passes:
/// the inner `timeout_after` reports `OuterTimeout`, which the loop does not
/// take for its own `TimedOut`.
#[test]
fn retry_loop_around_an_inner_timeout_ends_with_the_outer_limit() {
    let (out, tries) = run_virtual_clean(async {
        let tries = Rc::new(RefCell::new(Vec::new()));
        let log = tries.clone();
        let out = timeout_after(ms(30), async move {
            for _ in 0..10_000 {
                match timeout_after(ms(4), pending::<()>()).await {
                    Err(TrapError::TimedOut(_)) => log.borrow_mut().push("retry"),
                    other => return other,
                }
            }
            Ok(())
        })
        .await;
        let n = tries.borrow().len();
        (out, n)
    });
    assert!(
        matches!(out, Err(TrapError::TimedOut(_))),
        "expected the outer expiry, got {out:?}"
    );
    assert!(tries < 10_000, "the loop ended with the outer limit");
}

/// The inner block's error names the outer timeout, and the outer block's
/// own error names the same id.
#[test]
fn outer_expiry_inside_inner_block_names_the_outer_id() {
    let out = run_virtual_clean(async {
        let inner = Rc::new(RefCell::new(None));
        let seen = inner.clone();
        let outer = timeout_after(ms(10), async move {
            let r = timeout_after(HOUR, sleep(HOUR)).await;
            *seen.borrow_mut() = Some(r);
        })
        .await;
        let inner = inner.borrow_mut().take();
        (outer, inner)
    });
    match out {
        (Err(TrapError::TimedOut(outer)), Some(Err(TrapError::OuterTimeout(seen)))) => {
            assert_eq!(outer, seen)
        }
        other => panic!("unexpected: {other:?}"),
    }
}

type Boxed = Pin<Box<dyn Future<Output = Result<Result<(), TrapError>, TrapError>>>>;

/// A `timeout_after` first polled in one task and finished in another still
/// expires: the timeout follows its future to the task polling it.
#[test]
fn timeout_follows_its_future_to_another_task() {
    let out = run_virtual_clean(async {
        let cell: Rc<RefCell<Option<Boxed>>> = Rc::new(RefCell::new(None));
        let mut fut: Boxed = Box::pin(timeout_after(ms(10), sleep(HOUR)));
        // Poll it once here, in the main task.
        let first = futures::poll!(fut.as_mut());
        assert!(first.is_pending());
        *cell.borrow_mut() = Some(fut);
        let cell2 = cell.clone();
        let other = spawn(async move {
            let fut = cell2.borrow_mut().take().unwrap();
            fut.await
        })
        .unwrap();
        other.join().await
    });
    assert!(
        matches!(out, Ok(Err(TrapError::TimedOut(_)))),
        "the moved block expired: {out:?}"
    );
}

/// A join interrupted by a timeout keeps the handle: the task can be joined
/// again; after its output has been taken, another join says so.
#[test]
fn interrupted_join_keeps_the_handle() {
    let out = run_virtual_clean(async {
        let task = spawn(async {
            sleep(ms(20)).await.unwrap();
            "done"
        })
        .unwrap();
        let first = timeout_after(ms(1), task.join()).await;
        let second = task.join().await;
        let third = task.join().await;
        (first.is_err(), second, third)
    });
    assert_eq!(out, (true, Ok("done"), Err(JoinError::AlreadyJoined)));
}

/// A waker whose `Drop` calls into the kernel (here: reads the clock) may be
/// dropped by the trap slot — the last clone of it sits in the post of a leaf
/// dropped in the same poll — without a re-entrancy panic.
#[test]
fn waker_dropped_by_the_trap_slot_may_call_the_kernel() {
    static DROPPED: AtomicBool = AtomicBool::new(false);
    struct CallsKernelOnDrop;
    impl ArcWake for CallsKernelOnDrop {
        fn wake_by_ref(_: &Arc<Self>) {}
    }
    impl Drop for CallsKernelOnDrop {
        fn drop(&mut self) {
            assert!(trapline::clock().is_ok());
            DROPPED.store(true, Ordering::SeqCst);
        }
    }
    run_virtual_clean(async {
        let mut leaf = Box::pin(sleep(HOUR));
        {
            let w = waker(Arc::new(CallsKernelOnDrop));
            let mut cx = std::task::Context::from_waker(&w);
            assert!(leaf.as_mut().poll(&mut cx).is_pending());
        }
        // The slot's post now holds the last clone of the waker; dropping
        // the leaf scrubs the post, and with it the waker.
        drop(leaf);
    });
    assert!(DROPPED.load(Ordering::SeqCst));
}

/// A timeout owed to a leaf that is never polled again (polled once, then
/// left aside while the block waits on a foreign future) is taken by the
/// block's own wait instead: the block ends at its limit.
#[test]
fn timeout_owed_to_an_idle_leaf_still_ends_the_block() {
    let out = run_virtual_clean(async {
        timeout_after(ms(10), async {
            let mut idle = Box::pin(sleep(HOUR));
            assert!(futures::poll!(idle.as_mut()).is_pending());
            pending::<()>().await
        })
        .await
    });
    assert!(matches!(out, Err(TrapError::TimedOut(_))), "{out:?}");
}

/// A cancel owed to an idle leaf, while the task waits on a foreign future,
/// is taken by the next leaf that traps once the foreign future completes.
#[test]
fn cancel_owed_to_an_idle_leaf_goes_to_the_next_trap() {
    let out = run_virtual_clean(async {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let task = spawn(async move {
            let mut idle = Box::pin(sleep(HOUR));
            assert!(futures::poll!(idle.as_mut()).is_pending());
            let _ = rx.await;
            sleep(HOUR).await
        })
        .unwrap();
        yield_now().await.unwrap(); // the task parks
        assert_eq!(trapline::traps::cancel(task.id()), Ok(true));
        yield_now().await.unwrap(); // its delivery poll: nobody takes it
        tx.send(()).unwrap();
        task.join().await
    });
    assert_eq!(out, Ok(Err(TrapError::Cancelled)));
}

/// When the enclosing limit is taken by a sibling of an inner block, not by
/// a leaf inside it, the inner block's value is its own: `Ok`, not
/// `OuterTimeout`.
#[test]
fn outer_expiry_taken_by_a_sibling_leaves_the_inner_value_alone() {
    // Real clock: both deadlines must pass while the kernel's thread is blocked.
    // The inner deadline is taken from a reading made before the outer limit
    // is armed, so it falls first however long the thread is preempted.
    let (outer, inner) = run_clean(async {
        let start = clock().unwrap();
        let inner = Rc::new(RefCell::new(None));
        let seen = inner.clone();
        let outer = timeout_after(ms(10), async move {
            let (_, b) = futures::join!(
                sleep(HOUR),
                timeout_after(HOUR, async move {
                    sleep_until(start + ms(5)).await.map(|()| "mine")
                })
            );
            *seen.borrow_mut() = Some(b);
        });
        let blocker = async {
            yield_now().await.unwrap(); // the block parks first
            std::thread::sleep(ms(20)); // both deadlines pass in one pass
        };
        let outer = futures::join!(outer, blocker).0;
        let inner = inner.borrow_mut().take();
        (outer, inner)
    });
    assert!(matches!(outer, Err(TrapError::TimedOut(_))), "{outer:?}");
    assert_eq!(inner, Some(Ok(Ok("mine"))));
}

/// With equal deadlines, the outermost limit wins: a leaf takes the outer
/// expiry, cleanup inside takes the inner one, and the inner block still
/// reports `OuterTimeout`, so no retry loop takes it for its own.
#[test]
fn outermost_expiry_wins_over_the_blocks_own() {
    let (outer, inner) = run_virtual_clean(async {
        let inner = Rc::new(RefCell::new(None));
        let seen = inner.clone();
        let outer = timeout_after(Duration::ZERO, async move {
            let r = timeout_after(Duration::ZERO, async {
                let first = sleep(HOUR).await;
                let cleanup = sleep(ms(2)).await;
                (first, cleanup)
            })
            .await;
            *seen.borrow_mut() = Some(r);
        })
        .await;
        let inner = inner.borrow_mut().take();
        (outer, inner)
    });
    let Err(TrapError::TimedOut(id)) = outer else {
        panic!("outer: {outer:?}");
    };
    assert_eq!(inner, Some(Err(TrapError::OuterTimeout(id))));
}

/// A shutdown cancel owed to an idle leaf inside a `timeout_after` reaches
/// the task through the block's own wait: the task sees `Cancelled` and ends
/// within the grace instead of being dropped.
#[test]
fn shutdown_cancel_reaches_a_block_with_an_idle_leaf() {
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let (_, stats) = util::run_virtual_with_grace(Duration::from_secs(30), async move {
        spawn(async move {
            let r = timeout_after(HOUR, async {
                let mut idle = Box::pin(sleep(HOUR));
                assert!(futures::poll!(idle.as_mut()).is_pending());
                pending::<()>().await
            })
            .await;
            *s.borrow_mut() = Some(r);
        })
        .unwrap();
        yield_now().await.unwrap();
    });
    util::assert_clean(&stats);
    assert_eq!(*seen.borrow(), Some(Err(TrapError::Cancelled)));
}

/// Whether the inner block reports `OuterTimeout` does not depend on the
/// order a `join!` polls its branches: the sibling outside the inner block
/// takes the enclosing expiry first, and the inner block's own waiting leaf
/// still takes its owed share — inside the block, so it reports it.
#[test]
fn outer_timeout_is_reported_whatever_the_poll_order() {
    for sibling_first in [true, false] {
        let inner = run_virtual_clean(async move {
            let inner = Rc::new(RefCell::new(None));
            let seen = inner.clone();
            let _ = timeout_after(ms(5), async move {
                let block = timeout_after(HOUR, sleep(HOUR));
                let r = if sibling_first {
                    futures::join!(sleep(HOUR), block).1
                } else {
                    futures::join!(block, sleep(HOUR)).0
                };
                *seen.borrow_mut() = Some(r);
            })
            .await;
            let inner = inner.borrow_mut().take();
            inner
        });
        assert!(
            matches!(inner, Some(Err(TrapError::OuterTimeout(_)))),
            "sibling first: {sibling_first}: {inner:?}"
        );
    }
}

/// A task cancelled before it first runs, whose body is a `join!` of two
/// waits: both fail — the cancellation stays in force for every wait.
#[test]
fn cancel_before_first_poll_reaches_both_branches() {
    let out = run_virtual_clean(async {
        let task = spawn(async { futures::join!(sleep(HOUR), sleep(HOUR)) }).unwrap();
        task.cancel().await
    });
    assert_eq!(
        out,
        Ok((Err(TrapError::Cancelled), Err(TrapError::Cancelled)))
    );
}

/// A branch that finishes one wait normally after the limit, then starts
/// another, cannot outlive the limit: the new wait fails at once.
#[test]
fn branch_starting_a_new_wait_after_the_limit_fails_it() {
    let out = run_virtual_clean(async {
        timeout_after(ms(10), async {
            futures::join!(sleep(HOUR), async {
                let _ = sleep(ms(10)).await;
                sleep(HOUR).await
            })
        })
        .await
    });
    assert!(matches!(out, Err(TrapError::TimedOut(_))), "{out:?}");
}

/// A block polled once, set aside past its deadline, then awaited: every
/// wait inside it fails, and it reports its expiry.
#[test]
fn block_left_aside_past_its_deadline_ends_when_awaited() {
    let out = run_virtual_clean(async {
        let mut block = Box::pin(timeout_after(ms(5), async {
            futures::join!(sleep(ms(20)), sleep(HOUR))
        }));
        assert!(futures::poll!(block.as_mut()).is_pending());
        sleep(ms(10)).await.unwrap();
        block.await
    });
    assert!(matches!(out, Err(TrapError::TimedOut(_))), "{out:?}");
}

/// A limit over a `join!` of a foreign future that never completes and a
/// sleep ends at the limit: the block's own wait takes it for the foreign
/// branch.
#[test]
fn limit_over_a_foreign_branch_and_a_sleep_ends_the_block() {
    let out = run_virtual_clean(async {
        let (_tx, rx) = futures::channel::oneshot::channel::<()>();
        timeout_after(ms(1), async {
            let _ = futures::join!(rx, sleep(ms(10)));
        })
        .await
    });
    assert!(matches!(out, Err(TrapError::TimedOut(_))), "{out:?}");
}

/// A loop that catches `Cancelled` and waits again, unshielded, meets the
/// cancellation again and again, but cannot stall the kernel: after a bounded
/// number of deliveries in one poll the task yields to the loop, other tasks
/// run, and shutdown drops it at the end of the grace.
#[test]
fn loop_swallowing_cancellation_cannot_stall_the_kernel() {
    let seen = Rc::new(std::cell::Cell::new(0u64));
    let s = seen.clone();
    // Real clock: a task that never lets the kernel idle stops virtual time.
    let (other, stats) = util::run_with_grace(ms(50), async move {
        let stubborn = spawn(async move {
            loop {
                if sleep(HOUR).await == Err(TrapError::Cancelled) {
                    s.set(s.get() + 1);
                }
            }
        })
        .unwrap();
        yield_now().await.unwrap();
        assert_eq!(trapline::traps::cancel(stubborn.id()), Ok(true));
        // Another task still gets to run while the stubborn one spins.
        let other = spawn(async { sleep(ms(5)).await }).unwrap();
        other.join().await
    });
    util::assert_clean(&stats);
    assert_eq!(other, Ok(Ok(())));
    assert!(
        seen.get() > trapline::traps::INTERRUPTS_PER_POLL as u64,
        "delivered over several polls"
    );
}
