//! Panics: a panic in a task ends only that task and becomes its join error;
//! a panic in the main future comes out of `run`, after shutdown.

mod util;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use trapline::{clock, sleep, spawn, yield_now, JoinError, Kernel, TrapError};
use util::{assert_clean, entries, log, push, run_clean, run_virtual_clean, tcp_pair, Log};

const HOUR: Duration = Duration::from_secs(3600);

/// The message of a panic payload, as `&str` or `String`.
fn message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// A task's panic becomes `JoinError::Panicked` with the exact message — a
/// literal, a formatted one, one raised after a trap — and a payload that is
/// not a string reads `Box<dyn Any>`.
#[test]
fn task_panic_becomes_join_error_with_exact_message() {
    run_virtual_clean(async {
        let literal = spawn(async { panic!("static boom") }).unwrap();
        let formatted = spawn(async {
            let n = 6 * 7;
            if n == 42 {
                panic!("boom number {n}");
            }
        })
        .unwrap();
        let after_trap = spawn(async {
            sleep(Duration::from_millis(1)).await.unwrap();
            yield_now().await.unwrap();
            panic!("boom after {} traps", 2);
        })
        .unwrap();
        let opaque = spawn(async { std::panic::panic_any(7_u8) }).unwrap();
        assert_eq!(
            literal.join().await,
            Err(JoinError::Panicked("static boom".into()))
        );
        assert_eq!(
            formatted.join().await,
            Err(JoinError::Panicked("boom number 42".into()))
        );
        assert_eq!(
            after_trap.join().await,
            Err::<(), _>(JoinError::Panicked("boom after 2 traps".into()))
        );
        assert_eq!(
            opaque.join().await,
            Err::<(), _>(JoinError::Panicked("Box<dyn Any>".into()))
        );
    });
}

/// A panic in one task leaves its siblings and the kernel running: tasks
/// parked before the panic wake and finish with their exact outputs, new
/// tasks can be spawned, and the order of events is unchanged.
#[test]
fn other_tasks_keep_running_after_a_panic() {
    let log = log();
    let out = run_virtual_clean({
        let log = log.clone();
        async move {
            let (tx, rx) = oneshot::channel::<&str>();
            let waiter = spawn({
                let log = log.clone();
                async move {
                    push(&log, "waiter: waits");
                    let got = rx.await.unwrap();
                    push(&log, format!("waiter: got {got}"));
                    got.len()
                }
            })
            .unwrap();
            let (go_tx, go_rx) = oneshot::channel::<()>();
            let sleeper = spawn({
                let log = log.clone();
                async move {
                    push(&log, "sleeper: waits for go");
                    go_rx.await.unwrap();
                    sleep(Duration::from_millis(1)).await.unwrap();
                    push(&log, "sleeper: woke");
                    "slept"
                }
            })
            .unwrap();
            let bomb = spawn({
                let log = log.clone();
                async move {
                    push(&log, "bomb: ticking");
                    yield_now().await.unwrap();
                    push(&log, "bomb: boom");
                    panic!("bomb went off");
                }
            })
            .unwrap();
            let r: Result<(), _> = bomb.join().await;
            assert_eq!(r, Err(JoinError::Panicked("bomb went off".into())));
            push(&log, "main: bomb joined");
            go_tx.send(()).unwrap();
            assert_eq!(sleeper.join().await, Ok("slept"));
            tx.send("hello").unwrap();
            assert_eq!(waiter.join().await, Ok(5));
            let later = spawn(async { clock().map(|_| "later") }).unwrap();
            later.join().await.unwrap().unwrap()
        }
    });
    assert_eq!(out, "later");
    assert_eq!(
        entries(&log),
        [
            "waiter: waits",
            "sleeper: waits for go",
            "bomb: ticking",
            "bomb: boom",
            "main: bomb joined",
            "sleeper: woke",
            "waiter: got hello",
        ]
    );
}

/// A detached task (handle dropped) that panics disturbs no one: a task
/// joining nothing of it, and the main task, go on with exact results.
#[test]
fn detached_task_panic_does_not_disturb_others() {
    let log = log();
    let out = run_virtual_clean({
        let log = log.clone();
        async move {
            drop(
                spawn({
                    let log = log.clone();
                    async move {
                        push(&log, "detached: start");
                        sleep(Duration::from_millis(1)).await.unwrap();
                        push(&log, "detached: panics");
                        panic!("detached boom");
                    }
                })
                .unwrap(),
            );
            let worker = spawn({
                let log = log.clone();
                async move {
                    push(&log, "worker: start");
                    sleep(Duration::from_millis(5)).await.unwrap();
                    push(&log, "worker: done");
                    11
                }
            })
            .unwrap();
            let got = worker.join().await.unwrap();
            push(&log, "main: joined worker");
            got * 2
        }
    });
    assert_eq!(out, 22);
    assert_eq!(
        entries(&log),
        [
            "detached: start",
            "worker: start",
            "detached: panics",
            "worker: done",
            "main: joined worker",
        ]
    );
}

/// A task that panics while it holds parks (a sleep and a read pending in a
/// `join!`) and a registered stream leaves nothing behind: its parks are
/// undone and its fd released.
#[test]
fn panicking_task_leaves_nothing_parked() {
    run_virtual_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let task = spawn(async move {
            let mut buf = [0; 4];
            let _ = futures::join!(sleep(HOUR), server.read(&mut buf), async {
                sleep(Duration::from_millis(1)).await.unwrap();
                panic!("panic with parks held");
            });
        })
        .unwrap();
        assert_eq!(
            task.join().await,
            Err(JoinError::Panicked("panic with parks held".into()))
        );
        drop(client);
    });
}

/// A panic in the main future comes out of `run` with its payload, after
/// shutdown: the tasks left were cancelled and cleaned up first, the kernel
/// is empty, the thread has no kernel installed, and the kernel runs again.
#[test]
fn main_panic_propagates_after_shutdown() {
    let log = log();
    let mut kernel = Kernel::builder()
        .shutdown_grace(Duration::from_millis(200))
        .build()
        .unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        kernel.run({
            let log = log.clone();
            async move {
                spawn({
                    let log = log.clone();
                    async move {
                        let r = sleep(HOUR).await;
                        push(&log, format!("task: {r:?}"));
                        let cleanup = trapline::shield(sleep(Duration::from_millis(1))).await;
                        push(&log, format!("task: cleanup {cleanup:?}"));
                    }
                })
                .unwrap();
                yield_now().await.unwrap();
                push(&log, "main: panics");
                panic!("main went down");
            }
        })
    }));
    let payload = caught.expect_err("the main panic propagates");
    assert_eq!(message(&*payload), Some("main went down"));
    assert_eq!(
        entries(&log),
        [
            "main: panics",
            "task: Err(Cancelled)",
            "task: cleanup Ok(())"
        ]
    );
    assert_clean(&kernel.stats());
    assert_eq!(
        clock(),
        Err(TrapError::NoKernel),
        "the kernel was uninstalled"
    );
    assert_eq!(kernel.run(async { 5 }).unwrap(), 5, "the kernel runs again");
    assert_clean(&kernel.stats());
    assert_eq!(trapline::run(async { 6 }).unwrap(), 6);
}

/// A main future that panics while it holds a registered stream and a park
/// (in a `join!` with a pending sleep) leaves the kernel empty: what it held
/// is released while the kernel still runs.
#[test]
fn main_panic_with_resources_held_leaves_the_kernel_empty() {
    let mut kernel = Kernel::new().unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        kernel.run(async {
            let (client, server) = tcp_pair().await.unwrap();
            let mut buf = [0; 4];
            let _ = futures::join!(sleep(HOUR), server.read(&mut buf), async {
                sleep(Duration::from_millis(1)).await.unwrap();
                panic!("main panics holding fds");
            });
            drop(client);
        })
    }));
    let payload = caught.expect_err("the main panic propagates");
    assert_eq!(message(&*payload), Some("main panics holding fds"));
    assert_clean(&kernel.stats());
}

/// A panic in a task while another task joins it is delivered to that
/// joiner only; a panic in the joiner's handling is its own.
#[test]
fn panic_reaches_only_its_joiner() {
    run_virtual_clean(async {
        let inner = spawn(async {
            sleep(Duration::from_millis(1)).await.unwrap();
            panic!("inner");
        })
        .unwrap();
        let outer = spawn(async move {
            let r: Result<(), JoinError> = inner.join().await;
            match r {
                Err(JoinError::Panicked(msg)) => panic!("outer saw {msg}"),
                other => other.map(|_| 0),
            }
        })
        .unwrap();
        assert_eq!(
            outer.join().await,
            Err(JoinError::Panicked("outer saw inner".into()))
        );
    });
}

/// A task that panics while cleaning up during shutdown ends with that panic
/// as its join error; the other tasks still clean up and the kernel ends empty.
#[test]
fn panic_during_shutdown_cleanup_disturbs_no_one() {
    let log = log();
    let (handles, stats) = util::run_virtual_with_grace(Duration::from_millis(500), {
        let log = log.clone();
        async move {
            let panicker = spawn(async {
                let r = sleep(HOUR).await;
                panic!("cleanup failed after {r:?}");
            })
            .unwrap();
            let tidy = spawn({
                let log = log.clone();
                async move {
                    let r = sleep(HOUR).await;
                    let cleanup = trapline::shield(sleep(Duration::from_millis(1))).await;
                    push(&log, format!("tidy: {r:?}, cleanup {cleanup:?}"));
                    7
                }
            })
            .unwrap();
            yield_now().await.unwrap();
            (panicker, tidy)
        }
    });
    assert_clean(&stats);
    let (panicker, tidy) = handles;
    assert_eq!(
        futures::executor::block_on(panicker.join()),
        Err::<(), _>(JoinError::Panicked(
            "cleanup failed after Err(Cancelled)".into()
        ))
    );
    assert_eq!(futures::executor::block_on(tidy.join()), Ok(7));
    assert_eq!(entries(&log), ["tidy: Err(Cancelled), cleanup Ok(())"]);
}

/// A task whose destructor panics when shutdown drops it: the panic is
/// contained (logged by the kernel), `run` returns normally and the kernel
/// ends empty.
#[test]
fn destructor_panic_at_shutdown_is_contained() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("destructor boom");
        }
    }
    let (out, stats) = util::run_virtual_with_grace(Duration::ZERO, async {
        spawn(async {
            let _p = PanicOnDrop;
            std::future::pending::<()>().await;
        })
        .unwrap();
        yield_now().await.unwrap();
        "main done"
    });
    assert_eq!(out, "main done");
    assert_clean(&stats);
}

/// Regression: a task whose future panics in its poll and again in its
/// destructor. The future is dropped after the first panic was caught, not
/// during an unwind (where the second panic would abort the process): its
/// destructor sees no panic in flight, the joiner gets the poll's panic, and
/// the kernel goes on.
#[test]
fn poll_panic_then_destructor_panic_does_not_abort() {
    /// Traps once, then panics when polled again; panics when dropped.
    struct Doomed {
        log: Log,
        polled: bool,
    }
    impl Future for Doomed {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
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
            let doomed = spawn(Doomed {
                log: log.clone(),
                polled: false,
            })
            .unwrap();
            let joined = doomed.join().await;
            push(&log, "main goes on");
            let after = spawn(async { "still running" }).unwrap();
            (joined, after.join().await)
        }
    });
    assert_eq!(
        out,
        (
            Err(JoinError::Panicked("poll boom".into())),
            Ok("still running")
        )
    );
    assert_eq!(entries(&log), ["drop, panicking: false", "main goes on"]);
}
