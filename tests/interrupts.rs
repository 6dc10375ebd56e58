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
use trapline::{sleep, spawn, timeout_after, yield_now, JoinError, TrapError};
use util::{run_clean, tcp_pair};

const HOUR: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A timeout over a `join!` of two waiting sleeps fails both of them, so the
/// block ends at its limit instead of when the slower branch would.
#[test]
fn timeout_reaches_every_waiting_leaf_of_a_join() {
    let (out, branches) = run_clean(async {
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
    let out = run_clean(async {
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
    let out = run_clean(async {
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
    let (out, tries) = run_clean(async {
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
    let out = run_clean(async {
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
    let out = run_clean(async {
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
    let out = run_clean(async {
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
    run_clean(async {
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
