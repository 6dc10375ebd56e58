//! Cancellation: delivered once, as `Cancelled`, at the trap where the task
//! waits (or its next one); the task may catch it and clean up with more
//! awaits. Every case runs under `run_clean`: nothing is left parked,
//! registered or armed afterwards.

mod util;

use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use trapline::net::TcpListener;
use trapline::traps;
use trapline::{clock, current, sleep, sleep_until, spawn, yield_now, JoinError, TrapError};
use util::{entries, log, push, run_clean, run_virtual_clean, tcp_pair};

const HOUR: Duration = Duration::from_secs(3600);

/// Lets every task spawned so far run up to its first trap: after one yield
/// of the spawner, they have all been polled once (they were ready before it).
async fn let_them_park() {
    yield_now().await.expect("the spawner is not cancelled");
}

/// A task parked in a long sleep is resumed by `cancel` with
/// `Err(Cancelled)` from that sleep, and `cancel()` returns its output.
#[test]
fn cancel_at_sleep() {
    run_virtual_clean(async {
        let sleeper = spawn(async { sleep(HOUR).await }).unwrap();
        let_them_park().await;
        assert_eq!(sleeper.cancel().await, Ok(Err(TrapError::Cancelled)));
    });
}

/// A task parked in `read` on a stream with no data is resumed by `cancel`
/// with an `io::Error` that is a cancellation; the stream goes on working for
/// the task that catches it.
#[test]
fn cancel_at_read() {
    run_virtual_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let reader = spawn(async move {
            let mut buf = [0; 16];
            let err = server.read(&mut buf).await.unwrap_err();
            let seen = (
                TrapError::from_io(&err).cloned(),
                TrapError::is_cancellation(&err),
                err.kind(),
            );
            // After the cancellation, shielded, the same stream works normally.
            let data = trapline::shield(async {
                server.write_all(b"ready").await.unwrap();
                let n = server.read(&mut buf).await.unwrap();
                buf[..n].to_vec()
            })
            .await;
            (seen, data)
        })
        .unwrap();
        let_them_park().await;
        let id = reader.id();
        assert_eq!(traps::cancel(id), Ok(true));
        let mut ready = [0; 5];
        client.read_exact(&mut ready).await.unwrap();
        assert_eq!(&ready, b"ready");
        client.write_all(b"data").await.unwrap();
        let (seen, data) = reader.join().await.unwrap();
        assert_eq!(
            seen,
            (Some(TrapError::Cancelled), true, io::ErrorKind::Other)
        );
        assert_eq!(data, b"data");
    });
}

/// A task parked in `accept` is resumed by `cancel` with a cancellation
/// error; the listener then still accepts a connection.
#[test]
fn cancel_at_accept() {
    run_virtual_clean(async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap());
        let addr = listener.local_addr().unwrap();
        let acceptor = spawn({
            let listener = listener.clone();
            async move { listener.accept().await.map(|_| ()) }
        })
        .unwrap();
        let_them_park().await;
        let err = acceptor.cancel().await.unwrap().unwrap_err();
        assert!(TrapError::is_cancellation(&err), "{err}");
        assert_eq!(TrapError::from_io(&err), Some(&TrapError::Cancelled));

        let (connected, accepted) =
            futures::join!(trapline::net::TcpStream::connect(addr), listener.accept());
        let (connected, (accepted, peer)) = (connected.unwrap(), accepted.unwrap());
        assert_eq!(peer, connected.local_addr().unwrap());
        drop((connected, accepted));
    });
}

/// Task A waits on task B's join; cancelling A ends A's join with
/// `JoinError::Interrupted(Cancelled)`, while B is left alone: it is released
/// only afterwards, finishes normally and hands over its exact output.
#[test]
fn cancel_at_join() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let (go_tx, go_rx) = oneshot::channel::<()>();
            let (out_tx, out_rx) = oneshot::channel();
            let b = spawn({
                let log = log.clone();
                async move {
                    push(&log, "b: start");
                    go_rx.await.unwrap();
                    let r = sleep(Duration::from_millis(1)).await;
                    push(&log, format!("b: released, slept {r:?}"));
                    out_tx.send("b's output").unwrap();
                    "b's output"
                }
            })
            .unwrap();
            let a = spawn({
                let log = log.clone();
                async move {
                    push(&log, "a: join b");
                    let joined = b.join().await;
                    push(&log, format!("a: {joined:?}"));
                    joined
                }
            })
            .unwrap();
            let_them_park().await;
            assert_eq!(
                a.cancel().await,
                Ok(Err(JoinError::Interrupted(TrapError::Cancelled)))
            );
            go_tx.send(()).unwrap();
            assert_eq!(out_rx.await, Ok("b's output"));
        }
    });
    assert_eq!(
        entries(&log),
        [
            "b: start",
            "a: join b",
            "a: Err(Interrupted(Cancelled))",
            "b: released, slept Ok(())",
        ]
    );
}

/// Cancelling a task that was spawned but has not run yet: it still runs,
/// does its work (immediate traps and leaves that need not wait complete
/// normally), and its first blocking trap returns `Cancelled`.
#[test]
fn cancel_while_ready() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let task = spawn({
                let log = log.clone();
                async move {
                    push(&log, "task: start");
                    let me = current().unwrap();
                    let now = clock().unwrap();
                    push(
                        &log,
                        format!("task: sleep(0) {:?}", sleep(Duration::ZERO).await),
                    );
                    push(&log, format!("task: past {:?}", sleep_until(now).await));
                    let r = sleep(HOUR).await;
                    push(&log, format!("task: sleep(1h) {r:?}"));
                    (me, r)
                }
            })
            .unwrap();
            let id = task.id();
            assert!(!task.is_finished());
            assert_eq!(task.cancel().await, Ok((id, Err(TrapError::Cancelled))));
        }
    });
    assert_eq!(
        entries(&log),
        [
            "task: start",
            "task: sleep(0) Ok(())",
            "task: past Ok(())",
            "task: sleep(1h) Err(Cancelled)",
        ]
    );
}

/// A yield is a cancellation point too: a ready task cancelled before it
/// runs gets `Cancelled` from its first `yield_now`, and from every one
/// after it outside a shield.
#[test]
fn cancel_while_ready_is_taken_by_yield() {
    run_virtual_clean(async {
        let task = spawn(async {
            let first = yield_now().await;
            let second = yield_now().await;
            let shielded = trapline::shield(yield_now()).await;
            (first, second, shielded)
        })
        .unwrap();
        assert_eq!(
            task.cancel().await,
            Ok((Err(TrapError::Cancelled), Err(TrapError::Cancelled), Ok(())))
        );
    });
}

/// A task cancelled before it runs that never traps just finishes:
/// `cancel()` returns its output.
#[test]
fn cancel_of_a_task_that_never_traps() {
    run_virtual_clean(async {
        let task = spawn(async { 99 }).unwrap();
        assert_eq!(task.cancel().await, Ok(99));
    });
}

/// A second cancel is ignored, whether it comes before the first was
/// delivered or after. A cancellation stays in force: every wait outside a
/// shield fails with it, and a shielded wait runs.
#[test]
fn cancel_twice_is_delivered_once() {
    run_virtual_clean(async {
        let task = spawn(async {
            let first = sleep(HOUR).await;
            let second = trapline::shield(sleep(Duration::from_millis(5))).await;
            let third = yield_now().await;
            vec![first, second, third]
        })
        .unwrap();
        let id = task.id();
        let_them_park().await;
        assert_eq!(traps::cancel(id), Ok(true), "the first cancel takes");
        assert_eq!(traps::cancel(id), Ok(false), "pending: ignored");
        // The task takes its Cancelled and parks in its shielded sleep.
        let_them_park().await;
        assert_eq!(traps::cancel(id), Ok(false), "delivered: ignored");
        assert_eq!(
            task.cancel().await,
            Ok(vec![
                Err(TrapError::Cancelled),
                Ok(()),
                Err(TrapError::Cancelled)
            ])
        );
    });
}

/// Cancelling a task that has ended changes nothing and says so.
#[test]
fn cancel_of_a_finished_task_is_ignored() {
    run_virtual_clean(async {
        let task = spawn(async { "done" }).unwrap();
        let id = task.id();
        let_them_park().await;
        assert!(task.is_finished());
        assert_eq!(traps::cancel(id), Ok(false));
        assert_eq!(task.cancel().await, Ok("done"));
    });
}

/// A task that catches `Cancelled` cleans up with more awaits, shielded — a
/// sleep and a write on its stream — and returns a value, which `cancel()`
/// returns as `Ok`.
#[test]
fn cancelled_task_cleans_up_with_more_awaits() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let (client, server) = tcp_pair().await.unwrap();
            let worker = spawn({
                let log = log.clone();
                async move {
                    let mut buf = [0; 8];
                    let err = server.read(&mut buf).await.unwrap_err();
                    assert!(TrapError::is_cancellation(&err));
                    push(&log, "worker: cancelled");
                    trapline::shield(async {
                        let slept = sleep(Duration::from_millis(2)).await;
                        push(&log, format!("worker: cleanup sleep {slept:?}"));
                        server.write_all(b"goodbye").await.unwrap();
                        push(&log, "worker: wrote goodbye");
                    })
                    .await;
                    42
                }
            })
            .unwrap();
            let_them_park().await;
            assert_eq!(worker.cancel().await, Ok(42));
            let mut buf = [0; 7];
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"goodbye");
            // The worker dropped its end: the stream ends there.
            assert_eq!(client.read(&mut buf).await.unwrap(), 0);
        }
    });
    assert_eq!(
        entries(&log),
        [
            "worker: cancelled",
            "worker: cleanup sleep Ok(())",
            "worker: wrote goodbye",
        ]
    );
}

/// A task may cancel itself: the cancellation is delivered at its next
/// blocking trap (a wait that need not wait completes), and stays in force
/// outside a shield.
#[test]
fn self_cancel_is_delivered_at_the_next_trap() {
    run_virtual_clean(async {
        let task = spawn(async {
            let me = current().unwrap();
            let first = traps::cancel(me);
            let again = traps::cancel(me);
            let now = clock().unwrap();
            let past = sleep_until(now).await;
            let slept = sleep(HOUR).await;
            let after = trapline::shield(sleep(Duration::from_millis(1))).await;
            (first, again, past, slept, after)
        })
        .unwrap();
        assert_eq!(
            task.join().await,
            Ok((
                Ok(true),
                Ok(false),
                Ok(()),
                Err(TrapError::Cancelled),
                Ok(())
            ))
        );
    });
}

/// Several tasks parked on different traps (sleep, read, accept, join) are
/// cancelled one after another; each sees exactly its own `Cancelled`.
#[test]
fn cancel_many_parked_tasks() {
    run_virtual_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let sleeper = spawn(async { sleep(HOUR).await.map_err(|e| e.to_string()) }).unwrap();
        let reader = spawn(async move {
            let mut buf = [0; 4];
            let r = server.read(&mut buf).await;
            r.map_err(|e| TrapError::from_io(&e).cloned())
        })
        .unwrap();
        let acceptor = spawn(async move {
            let r = listener.accept().await;
            r.map(|_| ()).map_err(|e| TrapError::from_io(&e).cloned())
        })
        .unwrap();
        let target = spawn(async { sleep(HOUR).await }).unwrap();
        let target_id = target.id();
        let joiner = spawn(async move { target.join().await }).unwrap();
        let_them_park().await;

        assert_eq!(
            joiner.cancel().await,
            Ok(Err(JoinError::Interrupted(TrapError::Cancelled)))
        );
        assert_eq!(acceptor.cancel().await, Ok(Err(Some(TrapError::Cancelled))));
        assert_eq!(reader.cancel().await, Ok(Err(Some(TrapError::Cancelled))));
        assert_eq!(sleeper.cancel().await, Ok(Err("task cancelled".into())));
        // The join target was not cancelled with its joiner.
        assert_eq!(traps::cancel(target_id), Ok(true));
        drop(client);
        yield_now().await.unwrap();
    });
}

/// A cancellation reaches a trap leaf inside a foreign combinator: a task in
/// `select(sleep, oneshot)` gets `Cancelled` from the sleep branch.
#[test]
fn cancel_reaches_a_leaf_inside_a_foreign_combinator() {
    run_virtual_clean(async {
        let (tx, rx) = oneshot::channel::<u8>();
        let task = spawn(async move {
            let nap = std::pin::pin!(sleep(HOUR));
            match futures::future::select(nap, rx).await {
                futures::future::Either::Left((slept, _)) => Err(slept),
                futures::future::Either::Right((got, _)) => Ok(got),
            }
        })
        .unwrap();
        let_them_park().await;
        assert_eq!(task.cancel().await, Ok(Err(Err(TrapError::Cancelled))));
        assert!(tx.is_canceled(), "the task dropped its receiver");
    });
}

/// A task waiting on a foreign future (a oneshot nobody sends on) inside
/// `timeout_after` is cancelled at the wrapper's `FutureWait` trap: it sees
/// `Cancelled`, and its timeout is disarmed.
#[test]
fn cancel_at_a_foreign_future_inside_timeout_after() {
    run_virtual_clean(async {
        let (tx, rx) = oneshot::channel::<u8>();
        let task = spawn(async move { trapline::timeout_after(HOUR, rx).await }).unwrap();
        let_them_park().await;
        assert_eq!(task.cancel().await, Ok(Err(TrapError::Cancelled)));
        drop(tx);
    });
}

/// A task whose sleep has already fired (it is in the ready queue, not yet
/// run) when it is cancelled: the sleep, able to complete, returns `Ok`, and
/// the cancellation is delivered at the task's next blocking trap.
#[test]
fn cancel_after_the_wake_is_taken_at_the_next_trap() {
    // Real clock: the kernel's thread is blocked past the deadline in real time.
    run_clean(async {
        let task = spawn(async {
            let first = sleep(Duration::from_millis(1)).await;
            let second = sleep(HOUR).await;
            (first, second)
        })
        .unwrap();
        let_them_park().await;
        // Block the kernel (a real sleep) past the task's deadline, then yield:
        // the next pass fires the task's timer and runs main before it.
        std::thread::sleep(Duration::from_millis(5));
        let_them_park().await;
        assert!(!task.is_finished());
        assert_eq!(task.cancel().await, Ok((Ok(()), Err(TrapError::Cancelled))));
    });
}

/// A task waiting on a bare foreign future (a oneshot, no trap) cannot be
/// interrupted there: it is given a look, stays pending, and takes the
/// cancellation at its next blocking trap once the foreign future completes.
#[test]
fn cancel_of_a_task_waiting_on_a_bare_foreign_future() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let (tx, rx) = oneshot::channel::<&str>();
            let task = spawn({
                let log = log.clone();
                async move {
                    let got = rx.await;
                    push(&log, format!("task: got {got:?}"));
                    let r = sleep(HOUR).await;
                    push(&log, format!("task: sleep {r:?}"));
                    r
                }
            })
            .unwrap();
            let id = task.id();
            let_them_park().await;
            assert_eq!(traps::cancel(id), Ok(true));
            let_them_park().await;
            assert!(
                !task.is_finished(),
                "a bare foreign future is not interrupted"
            );
            tx.send("message").unwrap();
            assert_eq!(task.join().await, Ok(Err(TrapError::Cancelled)));
        }
    });
    assert_eq!(
        entries(&log),
        ["task: got Ok(\"message\")", "task: sleep Err(Cancelled)"]
    );
}

/// A task that cancels itself in the same poll in which another of its
/// leaves has already trapped (one branch of a `join!` sleeps, the other
/// cancels the task) must still get `Cancelled` from that sleep: the
/// cancellation is pending when the task parks, so it must not stay parked.
// Regression: the kernel used to park such a task without noticing the
// pending self-cancel, so it slept its full hour and ignored later cancels.
#[test]
fn self_cancel_after_a_sibling_leaf_trapped_is_delivered() {
    let (joined, stats) = util::run_virtual_with_grace(Duration::from_millis(100), async {
        let task = spawn(async {
            let me = current().unwrap();
            let (slept, first) = futures::join!(sleep(HOUR), async { traps::cancel(me) });
            (slept, first)
        })
        .unwrap();
        trapline::timeout_after(Duration::from_millis(100), task.join()).await
    });
    util::assert_clean(&stats);
    assert_eq!(joined, Ok(Ok((Err(TrapError::Cancelled), Ok(true)))));
}
