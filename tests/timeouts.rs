//! Timeouts scoped to the future they wrap: nesting, siblings, catching,
//! foreign futures, cancellation, and what a loop of them leaves behind.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use trapline::{ignore_after, sleep, spawn, timeout_after, yield_now, JoinError, TrapError};
use util::{assert_clean, run_clean, run_virtual, run_virtual_clean, tcp_pair};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The id inside a `TimedOut`, or a panic naming what came instead.
#[track_caller]
fn timed_out<T: std::fmt::Debug>(r: Result<T, TrapError>) -> trapline::TimeoutId {
    match r {
        Err(TrapError::TimedOut(id)) => id,
        other => panic!("expected TimedOut, got {other:?}"),
    }
}

/// An inner timeout that expires inside a longer outer one is reported by the
/// inner `timeout_after` with its own id; the outer one sees the inner's
/// result as an ordinary value and returns `Ok`.
#[test]
fn inner_timeout_fires_inside_outer() {
    let out = run_virtual_clean(async {
        timeout_after(Duration::from_secs(1), async {
            timeout_after(ms(10), sleep(Duration::from_secs(60))).await
        })
        .await
    });
    let Ok(inner) = out else {
        panic!("the outer timeout must not fire: {out:?}");
    };
    timed_out(inner);
}

/// The inner and outer timeouts carry different ids: after the inner one has
/// fired, the outer one fires too (at a later trap of the same block), and
/// the two ids differ.
#[test]
fn inner_and_outer_timeout_ids_differ() {
    let inner_result = Rc::new(RefCell::new(None));
    let seen = inner_result.clone();
    let out = run_virtual_clean(async move {
        timeout_after(ms(400), async move {
            let r = timeout_after(ms(10), sleep(Duration::from_secs(60))).await;
            *seen.borrow_mut() = Some(r);
            // The outer deadline now passes at this trap.
            sleep(Duration::from_secs(60)).await
        })
        .await
    });
    let outer_id = timed_out(out);
    let inner_id = timed_out(inner_result.take().expect("the inner block ran"));
    assert_ne!(inner_id, outer_id);
}

/// An outer timeout that expires while an inner `timeout_after` waits reaches
/// the leaf inside as the *outer* id; the inner `timeout_after` reports
/// `Err(OuterTimeout(outer))` — never `TimedOut`, so code around it cannot
/// take the outer expiry for its own — and the outer one reports
/// `Err(TimedOut(outer))`.
#[test]
fn outer_timeout_fires_inside_inner() {
    let inner_result = Rc::new(RefCell::new(None));
    let seen = inner_result.clone();
    let out = run_virtual_clean(async move {
        timeout_after(ms(10), async move {
            let r = timeout_after(Duration::from_secs(60), sleep(Duration::from_secs(60))).await;
            *seen.borrow_mut() = Some(r.clone());
            r
        })
        .await
    });
    let outer_id = timed_out(out);
    assert_eq!(
        inner_result.take(),
        Some(Err(TrapError::OuterTimeout(outer_id)))
    );
}

/// Nested timeouts neither of which expires pass the value through untouched.
#[test]
fn nested_timeouts_none_fires() {
    let out = run_virtual_clean(async {
        timeout_after(Duration::from_secs(60), async {
            timeout_after(Duration::from_secs(30), async {
                sleep(ms(5)).await.expect("the sleep ends normally");
                42
            })
            .await
        })
        .await
    });
    assert_eq!(out, Ok(Ok(42)));
}

/// `join!(timeout_after(10ms, sleep(60s)), y)`: x's timeout is delivered only
/// inside x; the sibling sleep y, which outlives x's deadline, ends normally.
#[test]
fn timeout_never_lands_in_a_sibling() {
    let (x, y) = run_virtual_clean(async {
        futures::join!(
            timeout_after(ms(10), sleep(Duration::from_secs(60))),
            sleep(ms(30))
        )
    });
    timed_out(x);
    assert_eq!(y, Ok(()));
}

/// Same as above with the sibling polled first: the order of the branches
/// does not matter.
#[test]
fn timeout_never_lands_in_a_sibling_polled_first() {
    let (y, x) = run_virtual_clean(async {
        futures::join!(
            sleep(ms(30)),
            timeout_after(ms(10), sleep(Duration::from_secs(60)))
        )
    });
    assert_eq!(y, Ok(()));
    timed_out(x);
}

/// `ignore_after` gives `Ok(None)` when the limit passes and `Ok(Some(v))`
/// when the future finishes first.
#[test]
fn ignore_after_none_and_some() {
    let (expired, finished) = run_virtual_clean(async {
        let expired = ignore_after(ms(10), sleep(Duration::from_secs(60))).await;
        let finished = ignore_after(Duration::from_secs(60), async {
            sleep(ms(2)).await.expect("the sleep ends normally");
            "done"
        })
        .await;
        (expired, finished)
    });
    assert_eq!(expired, Ok(None));
    assert_eq!(finished, Ok(Some("done")));
}

/// A future that catches its `TimedOut`, then cleans up with more awaits,
/// shielded (a short sleep and a yield, which must end normally), still makes
/// `timeout_after` report `Err(TimedOut)` with the very id the leaf saw, and
/// the cleanup ran to its end.
#[test]
fn caught_timeout_cleanup_runs_and_is_still_reported() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let caught = Rc::new(Cell::new(None));
    let (l, c) = (log.clone(), caught.clone());
    let out = run_virtual_clean(async move {
        timeout_after(ms(10), async move {
            c.set(Some(sleep(Duration::from_secs(60)).await));
            l.borrow_mut().push("caught");
            let unshielded = sleep(ms(5)).await;
            assert!(unshielded.is_err(), "the limit is still in force");
            trapline::shield(async {
                let cleanup = sleep(ms(5)).await;
                l.borrow_mut().push(if cleanup.is_ok() {
                    "slept"
                } else {
                    "sleep failed"
                });
                let again = yield_now().await;
                l.borrow_mut().push(if again.is_ok() {
                    "yielded"
                } else {
                    "yield failed"
                });
            })
            .await;
            "cleaned"
        })
        .await
    });
    let id = timed_out(out);
    assert_eq!(caught.take(), Some(Err(TrapError::TimedOut(id))));
    assert_eq!(*log.borrow(), ["caught", "slept", "yielded"]);
}

/// A leaf that can still make progress when the deadline has passed (and
/// the kernel has recorded the expiry) completes normally: a read whose data
/// arrived while the task was parked returns the data, and `timeout_after`
/// returns `Ok`.
#[test]
fn leaf_that_can_progress_after_the_deadline_completes() {
    // Real clock: the point is a kernel blocked past the deadline in real time.
    let out = run_clean(async {
        let (a, b) = tcp_pair().await.expect("a tcp pair");
        // The writer blocks the kernel's thread past the deadline, then writes:
        // when the reader runs again, both the expiry and the data are there.
        let writer = spawn(async move {
            std::thread::sleep(ms(30));
            b.write_all(b"late but there").await
        })
        .expect("spawn");
        let mut buf = [0u8; 64];
        let r = timeout_after(ms(10), a.read(&mut buf)).await;
        writer.join().await.expect("writer").expect("write");
        let n = r.expect("no timeout").expect("read");
        buf[..n].to_vec()
    });
    assert_eq!(out, b"late but there");
}

/// With a zero limit, a read whose data is already there completes at once:
/// expiry is only ever delivered at a trap.
#[test]
fn zero_timeout_on_ready_read_returns_ok() {
    let out = run_virtual_clean(async {
        let (a, b) = tcp_pair().await.expect("a tcp pair");
        b.write_all(b"ready").await.expect("write");
        // Wait (really, blocking this thread: no virtual time passes) until
        // the bytes are readable at `a`.
        let mut ready = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&a),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `ready` is one valid pollfd for the call to fill.
        let n = unsafe { libc::poll(&mut ready, 1, 10_000) };
        assert_eq!(n, 1, "the bytes reached the reader");
        let mut buf = [0u8; 16];
        let r = timeout_after(Duration::ZERO, a.read(&mut buf)).await;
        let n = r.expect("no timeout").expect("read");
        buf[..n].to_vec()
    });
    assert_eq!(out, b"ready");
}

/// A foreign future that never completes and never traps
/// (`std::future::pending`) is still bounded by `timeout_after`, and by
/// `ignore_after`.
#[test]
fn timeout_around_pending_foreign_future() {
    let (a, b) = run_virtual_clean(async {
        let a = timeout_after(ms(10), std::future::pending::<u8>()).await;
        let b = ignore_after(ms(10), std::future::pending::<u8>()).await;
        (a, b)
    });
    timed_out(a);
    assert_eq!(b, Ok(None));
}

/// 2000 `timeout_after`s in a loop — half that finish first, half that
/// expire — leave no timer, timeout or park behind.
#[test]
fn timeout_loop_leaves_nothing() {
    let (counts, stats) = run_virtual(async {
        let (mut ok, mut expired) = (0, 0);
        for i in 0..2000u32 {
            if i % 2 == 0 {
                let r = timeout_after(Duration::from_secs(60), yield_now()).await;
                assert_eq!(r, Ok(Ok(())));
                ok += 1;
            } else {
                let r = timeout_after(Duration::ZERO, sleep(Duration::from_secs(60))).await;
                timed_out(r);
                expired += 1;
            }
        }
        (ok, expired)
    });
    assert_eq!(counts, (1000, 1000));
    assert_clean(&stats);
}

/// A long sleep beside a loop of 2000 expiring `timeout_after`s: every expiry
/// interrupts the task, so the sibling sleep is released and re-parked each
/// time. The sleep still ends normally, and nothing is left behind.
#[test]
fn timeout_loop_beside_a_long_sleep_leaves_nothing() {
    // Regression: interrupts used to undo the sibling sleep's park, whose
    // re-park pushed duplicate heap entries that broke the live count.
    let ((expired, long), stats) = run_virtual(async {
        futures::join!(
            async {
                let mut expired = 0;
                for _ in 0..2000u32 {
                    let r = timeout_after(Duration::ZERO, sleep(Duration::from_secs(60))).await;
                    timed_out(r);
                    expired += 1;
                }
                expired
            },
            sleep(ms(300))
        )
    });
    assert_eq!(expired, 2000);
    assert_eq!(long, Ok(()));
    assert_clean(&stats);
}

/// A cancellation arriving while a task waits inside `timeout_after` reaches
/// the waiting leaf as `Cancelled`; `timeout_after` itself returns the inner
/// output (`Ok(Err(Cancelled))`), since its own timeout did not fire.
#[test]
fn cancellation_inside_timeout_reaches_the_leaf() {
    let out = run_virtual_clean(async {
        let task = spawn(async {
            timeout_after(Duration::from_secs(60), sleep(Duration::from_secs(60))).await
        })
        .expect("spawn");
        // Let the task trap first.
        sleep(ms(5)).await.expect("sleep");
        task.cancel().await
    });
    assert_eq!(out, Ok(Ok(Err(TrapError::Cancelled))));
}

/// A cancellation arriving while `timeout_after` waits on a foreign future
/// that never traps is delivered at the wrapper's own trap: `Err(Cancelled)`.
#[test]
fn cancellation_inside_timeout_around_foreign_future() {
    let out = run_virtual_clean(async {
        let task = spawn(async {
            timeout_after(Duration::from_secs(60), std::future::pending::<()>()).await
        })
        .expect("spawn");
        sleep(ms(5)).await.expect("sleep");
        task.cancel().await
    });
    assert_eq!(out, Ok(Err(TrapError::Cancelled)));
}

/// A cancellation that arrives in a task blocked inside nested timeouts is
/// taken by the leaf, passes through both wrappers as a value, and the task
/// can still clean up with a shielded sleep afterwards.
#[test]
fn cancellation_inside_nested_timeouts_then_cleanup() {
    let out = run_virtual_clean(async {
        let task = spawn(async {
            let r = timeout_after(Duration::from_secs(60), async {
                timeout_after(Duration::from_secs(30), sleep(Duration::from_secs(60))).await
            })
            .await;
            let cleanup = trapline::shield(sleep(ms(2))).await;
            (r, cleanup)
        })
        .expect("spawn");
        sleep(ms(5)).await.expect("sleep");
        task.cancel().await
    });
    let expected: Result<_, JoinError> = Ok((Ok(Ok(Err(TrapError::Cancelled))), Ok(())));
    assert_eq!(out, expected);
}

/// Two interrupts in force at once — a cancel and an expired timeout — meet
/// every wait with the cancel: cancellation wins. No leaf took the expiry,
/// so `timeout_after` returns its future's output.
#[test]
fn cancel_then_timeout_both_pending() {
    // Real clock: the kernel's thread is blocked past the deadline in real time.
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let out = run_clean(async move {
        let task = spawn(async move {
            timeout_after(ms(10), async move {
                let first = sleep(Duration::from_secs(60)).await;
                s.borrow_mut().push(first);
                let second = sleep(Duration::from_secs(60)).await;
                s.borrow_mut().push(second);
            })
            .await
        })
        .expect("spawn");
        // Let the task park in its scope.
        sleep(ms(2)).await.expect("sleep");
        // Block the kernel's thread past the task's deadline, then cancel: the
        // expiry is recorded in the next pass, before the task runs again.
        std::thread::sleep(ms(20));
        assert!(trapline::traps::cancel(task.id()).expect("cancel"));
        task.join().await
    });
    assert_eq!(out, Ok(Ok(())));
    assert_eq!(
        *seen.borrow(),
        [Err(TrapError::Cancelled), Err(TrapError::Cancelled)]
    );
}

/// Nested `ignore_after`s: an outer limit passing inside the inner one makes
/// the inner `ignore_after` fail with `OuterTimeout` (it is not its own limit,
/// so it must not quietly give `None`), and the outer one gives `None`.
#[test]
fn nested_ignore_after_outer_fires() {
    let inner_result = Rc::new(RefCell::new(None));
    let seen = inner_result.clone();
    let out = run_virtual_clean(async move {
        ignore_after(ms(10), async move {
            let r = ignore_after(Duration::from_secs(60), sleep(Duration::from_secs(60))).await;
            *seen.borrow_mut() = Some(r);
        })
        .await
    });
    assert_eq!(out, Ok(None));
    let inner = inner_result.take().expect("the inner block ended");
    let Err(TrapError::OuterTimeout(_)) = inner else {
        panic!("the inner block reports the outer expiry: {inner:?}");
    };
}
