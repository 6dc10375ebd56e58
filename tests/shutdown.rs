//! Shutdown: when the main future ends, the tasks left are cancelled at their
//! traps, may clean up within the grace period, and are dropped after it.
//! Nothing they held — parks, fd registrations, timers, timeouts — survives.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::executor::block_on;
use trapline::net::TcpListener;
use trapline::{sleep, spawn, timeout_after, yield_now, JoinError, JoinHandle, TrapError};
use util::{assert_clean, log, push, run_virtual_clean, run_virtual_with_grace, tcp_pair, Log};

const HOUR: Duration = Duration::from_secs(3600);
const GRACE: Duration = Duration::from_millis(200);

fn sorted(log: &Log) -> Vec<String> {
    let mut all = log.borrow().clone();
    all.sort();
    all
}

/// Records `"<name>: dropped"` when the task body holding it goes away, by
/// completion or by being dropped.
struct DropGuard {
    name: &'static str,
    log: Log,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        push(&self.log, format!("{}: dropped", self.name));
    }
}

fn guard(name: &'static str, log: &Log) -> DropGuard {
    DropGuard {
        name,
        log: log.clone(),
    }
}

/// The result of a handle whose kernel is gone: the task's slot holds its end.
fn outcome<T>(handle: JoinHandle<T>) -> Result<T, JoinError> {
    assert!(handle.is_finished(), "every task ended with its kernel");
    block_on(handle.join())
}

/// Main returns while tasks are parked on sleep, read, accept and join, and
/// one has been spawned but not run yet: each is cancelled at its trap, runs
/// its cleanup (the join target's cleanup awaits a sleep), and the kernel is
/// empty afterwards.
#[test]
fn shutdown_cancels_parked_tasks_and_leaks_nothing() {
    let log = log();
    let handles = run_virtual_clean({
        let log = log.clone();
        async move {
            let (client, server) = tcp_pair().await.unwrap();
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();

            let sleeper = spawn({
                let log = log.clone();
                async move {
                    let r = sleep(HOUR).await;
                    push(&log, format!("sleeper: {r:?}"));
                    r.map_err(|e| e.to_string())
                }
            })
            .unwrap();
            let reader = spawn({
                let log = log.clone();
                async move {
                    // Keeps the peer open, so the read can only end by cancellation.
                    let _client = client;
                    let mut buf = [0; 8];
                    let err = server.read(&mut buf).await.unwrap_err();
                    push(&log, format!("reader: {:?}", TrapError::from_io(&err)));
                    err.to_string()
                }
            })
            .unwrap();
            let acceptor = spawn({
                let log = log.clone();
                async move {
                    let err = listener.accept().await.unwrap_err();
                    push(&log, format!("acceptor: {:?}", TrapError::from_io(&err)));
                    err.to_string()
                }
            })
            .unwrap();
            let target = spawn({
                let log = log.clone();
                async move {
                    let r = sleep(HOUR).await;
                    let cleanup = trapline::shield(sleep(Duration::from_millis(2))).await;
                    push(&log, format!("target: {r:?}, cleanup sleep {cleanup:?}"));
                    "target done"
                }
            })
            .unwrap();
            let joiner = spawn({
                let log = log.clone();
                async move {
                    let r = target.join().await;
                    push(&log, format!("joiner: {r:?}"));
                    r
                }
            })
            .unwrap();
            yield_now().await.unwrap(); // everyone above is parked now
            let fresh = spawn({
                let log = log.clone();
                async move {
                    push(&log, "fresh: started");
                    let r = sleep(HOUR).await;
                    push(&log, format!("fresh: {r:?}"));
                    r
                }
            })
            .unwrap();
            (sleeper, reader, acceptor, joiner, fresh)
        }
    });
    let (sleeper, reader, acceptor, joiner, fresh) = handles;
    assert_eq!(outcome(sleeper), Ok(Err("task cancelled".to_string())));
    assert_eq!(outcome(reader).as_deref(), Ok("task cancelled"));
    assert_eq!(outcome(acceptor).as_deref(), Ok("task cancelled"));
    assert_eq!(
        outcome(joiner),
        Ok(Err(JoinError::Interrupted(TrapError::Cancelled)))
    );
    assert_eq!(outcome(fresh), Ok(Err(TrapError::Cancelled)));
    assert_eq!(
        sorted(&log),
        [
            "acceptor: Some(Cancelled)",
            "fresh: Err(Cancelled)",
            "fresh: started",
            "joiner: Err(Interrupted(Cancelled))",
            "reader: Some(Cancelled)",
            "sleeper: Err(Cancelled)",
            "target: Err(Cancelled), cleanup sleep Ok(())",
        ]
    );
}

/// Tasks that never finish after cancellation — one awaiting a foreign future
/// that never completes, one that catches `Cancelled` and sleeps again,
/// shielded, one that catches it and reads again, shielded — are dropped when the grace period ends;
/// their guards run, their joins say `Dropped`, and nothing they held is
/// left. Well-behaved tasks beside them (one waiting on a foreign future
/// inside `timeout_after`) end normally with `Cancelled`.
#[test]
fn shutdown_drops_tasks_that_outlive_the_grace() {
    let log = log();
    let (handles, stats) = run_virtual_with_grace(GRACE, {
        let log = log.clone();
        async move {
            let (client, server) = tcp_pair().await.unwrap();
            let foreign = spawn({
                let g = guard("foreign", &log);
                async move {
                    let _g = g;
                    std::future::pending::<()>().await;
                }
            })
            .unwrap();
            let stubborn_sleeper = spawn({
                let (g, log) = (guard("stubborn sleeper", &log), log.clone());
                async move {
                    let _g = g;
                    let r = sleep(HOUR).await;
                    push(&log, format!("stubborn sleeper: {r:?}"));
                    // Ignores the cancellation: waits on, shielded.
                    loop {
                        let _ = trapline::shield(sleep(HOUR)).await;
                    }
                }
            })
            .unwrap();
            let stubborn_reader = spawn({
                let (g, log) = (guard("stubborn reader", &log), log.clone());
                async move {
                    let _g = g;
                    let _client = client;
                    let mut buf = [0; 8];
                    let r = server.read(&mut buf).await;
                    let err = r.map(|_| ()).map_err(|e| TrapError::from_io(&e).cloned());
                    push(&log, format!("stubborn reader: {err:?}"));
                    // Ignores the cancellation: reads on, shielded.
                    loop {
                        let _ = trapline::shield(server.read(&mut buf)).await;
                    }
                }
            })
            .unwrap();
            let scoped = spawn({
                let (g, log) = (guard("scoped", &log), log.clone());
                async move {
                    let _g = g;
                    let r = timeout_after(HOUR, std::future::pending::<()>()).await;
                    push(&log, format!("scoped: {r:?}"));
                    r
                }
            })
            .unwrap();
            yield_now().await.unwrap();
            (foreign, stubborn_sleeper, stubborn_reader, scoped)
        }
    });
    assert_clean(&stats);
    let (foreign, stubborn_sleeper, stubborn_reader, scoped) = handles;
    assert_eq!(outcome(foreign), Err(JoinError::Dropped));
    assert_eq!(outcome(stubborn_sleeper), Err(JoinError::Dropped));
    assert_eq!(outcome(stubborn_reader), Err(JoinError::Dropped));
    assert_eq!(outcome(scoped), Ok(Err(TrapError::Cancelled)));
    assert_eq!(
        sorted(&log),
        [
            "foreign: dropped",
            "scoped: Err(Cancelled)",
            "scoped: dropped",
            "stubborn reader: Err(Some(Cancelled))",
            "stubborn reader: dropped",
            "stubborn sleeper: Err(Cancelled)",
            "stubborn sleeper: dropped",
        ],
        "each stubborn task saw exactly one Cancelled, then was dropped"
    );
}

/// A task spawned during the grace period, by a task cleaning up, is itself
/// cancelled (at its first trap) and ends before the kernel returns.
#[test]
fn tasks_spawned_while_cleaning_up_are_cancelled_too() {
    let log = log();
    let helper_handle: Rc<RefCell<Option<JoinHandle<_>>>> = Rc::default();
    run_virtual_clean({
        let (log, helper_handle) = (log.clone(), helper_handle.clone());
        async move {
            spawn(async move {
                let r = sleep(HOUR).await;
                push(&log, format!("cleaner: {r:?}"));
                let helper = spawn({
                    let log = log.clone();
                    async move {
                        push(&log, "helper: started");
                        let r = sleep(HOUR).await;
                        push(&log, format!("helper: {r:?}"));
                        r
                    }
                });
                *helper_handle.borrow_mut() = Some(helper.expect("spawn during the grace"));
            })
            .unwrap();
            yield_now().await.unwrap();
        }
    });
    let helper = helper_handle.borrow_mut().take().unwrap();
    assert_eq!(outcome(helper), Ok(Err(TrapError::Cancelled)));
    assert_eq!(
        sorted(&log),
        [
            "cleaner: Err(Cancelled)",
            "helper: Err(Cancelled)",
            "helper: started"
        ]
    );
}

/// Once the grace is over and tasks are being dropped, spawning is refused
/// with an error (a task's destructor that tries it gets
/// `Unsupported("the kernel is shutting down")`), and the refused future is
/// dropped without running.
#[test]
fn spawn_while_tasks_are_dropped_is_refused() {
    struct SpawnOnDrop(Rc<RefCell<Vec<String>>>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let log = self.0.clone();
            let r = spawn(async move { push(&log, "late: ran") });
            push(&self.0, format!("spawn on drop: {:?}", r.map(|h| h.id())));
        }
    }
    let log = log();
    let ((), stats) = run_virtual_with_grace(Duration::ZERO, {
        let log = log.clone();
        async move {
            spawn(async move {
                let _s = SpawnOnDrop(log);
                std::future::pending::<()>().await;
            })
            .unwrap();
            yield_now().await.unwrap();
        }
    });
    assert_clean(&stats);
    assert_eq!(
        sorted(&log),
        ["spawn on drop: Err(Unsupported(\"the kernel is shutting down\"))"]
    );
}

/// With no grace at all, tasks left when main ends are dropped without
/// running again; the kernel is still empty afterwards.
#[test]
fn zero_grace_drops_everything_and_leaks_nothing() {
    let log = log();
    let (handles, stats) = run_virtual_with_grace(Duration::ZERO, {
        let log = log.clone();
        async move {
            let (client, server) = tcp_pair().await.unwrap();
            let sleeper = spawn({
                let g = guard("sleeper", &log);
                async move {
                    let _g = g;
                    sleep(HOUR).await
                }
            })
            .unwrap();
            let reader = spawn({
                let g = guard("reader", &log);
                async move {
                    let _g = (g, client);
                    let mut buf = [0; 4];
                    server.read(&mut buf).await.map_err(|e| e.to_string())
                }
            })
            .unwrap();
            yield_now().await.unwrap();
            (sleeper, reader)
        }
    });
    assert_clean(&stats);
    let (sleeper, reader) = handles;
    assert_eq!(outcome(sleeper), Err(JoinError::Dropped));
    assert_eq!(outcome(reader), Err(JoinError::Dropped));
    assert_eq!(sorted(&log), ["reader: dropped", "sleeper: dropped"]);
}

/// A task parked with a cancellation still pending (it cancelled itself in
/// the poll in which a sibling leaf had already trapped) is still interrupted
/// by shutdown and gets to clean up within the grace.
// Regression: shutdown's cancel used to be ignored here (the inbox was
// already `Pending`), so the task never cleaned up and was dropped.
#[test]
fn shutdown_interrupts_a_task_parked_with_a_pending_self_cancel() {
    let log = log();
    let (handle, stats) = run_virtual_with_grace(GRACE, {
        let log = log.clone();
        async move {
            let task = spawn({
                let (g, log) = (guard("self-cancelled", &log), log.clone());
                async move {
                    let _g = g;
                    let me = trapline::current().unwrap();
                    let (slept, _) =
                        futures::join!(sleep(HOUR), async { trapline::traps::cancel(me) });
                    push(&log, format!("self-cancelled: {slept:?}"));
                    slept
                }
            })
            .unwrap();
            yield_now().await.unwrap();
            task
        }
    });
    assert_clean(&stats);
    assert_eq!(
        sorted(&log),
        ["self-cancelled: Err(Cancelled)", "self-cancelled: dropped"]
    );
    assert_eq!(outcome(handle), Ok(Err(TrapError::Cancelled)));
}
