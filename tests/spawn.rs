//! Spawning and joining tasks: start order, what the spawner sees, join
//! results, detached tasks, and what happens outside (or inside) a kernel.

mod util;

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use trapline::net::{TcpListener, TcpStream};
use trapline::{
    clock, current, sleep, sleep_until, spawn, timeout_after, yield_now, JoinError, TrapError,
};
use util::{entries, log, push, run_virtual, run_virtual_clean};

/// Tasks start in spawn order, in the pass after the one that spawned them;
/// the spawner keeps running (immediate traps included) until it reaches a
/// blocking trap; each join returns exactly its task's output.
#[test]
fn tasks_start_in_spawn_order_after_the_spawner_traps() {
    let log = log();
    let outputs = run_virtual_clean({
        let log = log.clone();
        async move {
            let mut handles = Vec::new();
            for (name, value) in [("a", 1_u32), ("b", 2), ("c", 3)] {
                push(&log, format!("main: spawn {name}"));
                let log = log.clone();
                handles.push(spawn(async move {
                    push(&log, format!("{name}: start"));
                    yield_now().await.expect("yield");
                    push(&log, format!("{name}: end"));
                    value * 10
                })?);
            }
            // Immediate traps do not let the children run.
            clock()?;
            current()?;
            push(&log, "main: before trap");
            let mut outputs = Vec::new();
            for handle in handles {
                outputs.push(handle.join().await.expect("a join"));
                push(&log, format!("main: joined {}", outputs.len()));
            }
            Ok::<_, TrapError>(outputs)
        }
    })
    .expect("main");
    assert_eq!(outputs, vec![10, 20, 30]);
    assert_eq!(
        entries(&log),
        [
            "main: spawn a",
            "main: spawn b",
            "main: spawn c",
            "main: before trap",
            "a: start",
            "b: start",
            "c: start",
            "a: end",
            "b: end",
            "c: end",
            "main: joined 1",
            "main: joined 2",
            "main: joined 3",
        ]
    );
}

/// `join` hands back the task's output by value, whatever its type: a
/// `String`, a `Vec`, a `Result` carrying an error of the task itself.
#[test]
fn join_returns_the_exact_output() {
    run_virtual_clean(async {
        let text = spawn(async { String::from("forty-two") }).unwrap();
        let list = spawn(async {
            sleep(Duration::from_millis(1)).await.unwrap();
            vec![1_u8, 2, 3]
        })
        .unwrap();
        let failed = spawn(async { Err::<(), _>(io::Error::other("task's own error")) }).unwrap();
        let unit = spawn(async {}).unwrap();
        assert_eq!(text.join().await, Ok(String::from("forty-two")));
        assert_eq!(list.join().await, Ok(vec![1, 2, 3]));
        let err = failed.join().await.expect("the task ended").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert_eq!(err.to_string(), "task's own error");
        assert_eq!(unit.join().await, Ok(()));
    });
}

/// `JoinHandle::id` is the id the task itself sees through `current()`, and it
/// differs from the spawner's and from its siblings'.
#[test]
fn handle_id_and_current_agree() {
    run_virtual_clean(async {
        let me = current().unwrap();
        let a = spawn(async { current() }).unwrap();
        let b = spawn(async { current() }).unwrap();
        let (a_id, b_id) = (a.id(), b.id());
        assert_ne!(a_id, me);
        assert_ne!(b_id, me);
        assert_ne!(a_id, b_id);
        assert_eq!(a.join().await, Ok(Ok(a_id)));
        assert_eq!(b.join().await, Ok(Ok(b_id)));
        assert_eq!(current(), Ok(me), "the main task's id does not change");
    });
}

/// Joining a task that has already ended returns its output at once, without
/// trapping: a task spawned just before the join has not run yet when the
/// join returns.
#[test]
fn join_of_an_already_finished_task() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let done = spawn(async { 7_u64 }).unwrap();
            assert!(!done.is_finished(), "a spawned task has not run yet");
            yield_now().await.unwrap();
            assert!(done.is_finished());
            let later = spawn({
                let log = log.clone();
                async move { push(&log, "later: ran") }
            })
            .unwrap();
            assert_eq!(done.join().await, Ok(7));
            push(&log, "main: joined");
            later.join().await.unwrap();
        }
    });
    assert_eq!(entries(&log), ["main: joined", "later: ran"]);
}

/// Dropping a `JoinHandle` detaches the task: it keeps running, through its
/// traps, to completion.
#[test]
fn detached_task_runs_to_completion() {
    let log = log();
    let finished = Rc::new(Cell::new(false));
    let got = run_virtual_clean({
        let (log, finished) = (log.clone(), finished.clone());
        async move {
            let (tx, rx) = oneshot::channel();
            let handle = spawn(async move {
                push(&log, "detached: start");
                yield_now().await.unwrap();
                sleep(Duration::from_millis(2)).await.unwrap();
                push(&log, "detached: slept");
                tx.send("from the detached task").unwrap();
                finished.set(true);
            })
            .unwrap();
            drop(handle);
            rx.await.expect("the detached task sent")
        }
    });
    assert_eq!(got, "from the detached task");
    assert!(finished.get());
    assert_eq!(entries(&log), ["detached: start", "detached: slept"]);
}

/// Outside a kernel `spawn` fails with `NoKernel` (and does not panic).
#[test]
fn spawn_outside_a_kernel_is_no_kernel() {
    let ran = Rc::new(Cell::new(false));
    let result = spawn({
        let ran = ran.clone();
        async move { ran.set(true) }
    });
    assert_eq!(result.map(|h| h.id()), Err(TrapError::NoKernel));
    assert!(!ran.get());
}

/// `trapline::run` inside a running kernel (in the main task and in a spawned
/// task) fails with an error instead of starting a second kernel; the inner
/// future never runs, and the outer kernel keeps working.
#[test]
fn run_inside_a_kernel_fails_and_the_outer_kernel_goes_on() {
    const NESTED: &str =
        "trapline::run: unsupported trap: a kernel is already running on this thread";
    let inner_ran = Rc::new(Cell::new(false));
    let (out, stats) = run_virtual({
        let inner_ran = inner_ran.clone();
        async move {
            let flag = inner_ran.clone();
            let err = trapline::run(async move { flag.set(true) }).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::Other);
            assert_eq!(err.to_string(), NESTED);

            let flag = inner_ran.clone();
            let child = spawn(async move {
                let err = trapline::run(async move { flag.set(true) }).unwrap_err();
                sleep(Duration::from_millis(1)).await.unwrap();
                err.to_string()
            })
            .unwrap();
            assert_eq!(child.join().await.as_deref(), Ok(NESTED));

            // The outer kernel still serves every kind of trap.
            sleep(Duration::from_millis(1)).await.unwrap();
            yield_now().await.unwrap();
            let worker = spawn(async { current().map(|_| 5) }).unwrap();
            let five = worker.join().await.unwrap().unwrap();
            let (client, server) = util::tcp_pair().await.unwrap();
            client.write_all(b"still here").await.unwrap();
            let mut buf = [0; 10];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"still here");
            five
        }
    });
    assert_eq!(out, 5);
    assert!(!inner_ran.get(), "the nested future never ran");
    util::assert_clean(&stats);
    // The thread is free again: a new kernel runs.
    assert_eq!(trapline::run(async { 1 }).unwrap(), 1);
}

/// Outside any kernel the time, task and net entry points report `NoKernel`
/// as errors; none of them panics. Also after a kernel has run and returned
/// on this thread.
#[test]
fn entry_points_outside_a_kernel_are_no_kernel_errors() {
    fn check() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(clock(), Err(TrapError::NoKernel));
        assert_eq!(current(), Err(TrapError::NoKernel));
        assert_eq!(
            futures::executor::block_on(sleep(Duration::from_millis(1))),
            Err(TrapError::NoKernel)
        );
        assert_eq!(
            futures::executor::block_on(sleep(Duration::ZERO)),
            Err(TrapError::NoKernel)
        );
        let past = std::time::Instant::now();
        assert_eq!(
            futures::executor::block_on(sleep_until(past)),
            Err(TrapError::NoKernel)
        );
        assert_eq!(
            futures::executor::block_on(yield_now()),
            Err(TrapError::NoKernel)
        );
        assert_eq!(
            futures::executor::block_on(timeout_after(Duration::from_secs(1), async { 1 })),
            Err(TrapError::NoKernel)
        );
        let err = TcpListener::bind(addr).unwrap_err();
        assert_eq!(TrapError::from_io(&err), Some(&TrapError::NoKernel));
        let err = futures::executor::block_on(TcpStream::connect(addr)).unwrap_err();
        assert_eq!(TrapError::from_io(&err), Some(&TrapError::NoKernel));
        assert_eq!(
            trapline::traps::cancel(trapline::TaskId::new(0, 1)),
            Err(TrapError::NoKernel)
        );
    }
    check();
    let id = trapline::run(async { current().unwrap() }).unwrap();
    check();
    // A join handle outlives its kernel only as a dead handle: joining it
    // outside any kernel cannot wait, and says why.
    let (handle, stats) = util::run_virtual_with_grace(Duration::ZERO, async {
        let h = spawn(std::future::pending::<()>()).unwrap();
        assert_ne!(h.id(), id);
        h
    });
    util::assert_clean(&stats);
    assert!(
        handle.is_finished(),
        "the kernel dropped the task at shutdown"
    );
    assert_eq!(
        futures::executor::block_on(handle.join()),
        Err(JoinError::Dropped)
    );
}

/// A task spawned by a task (not the main one) in the middle of a pass starts
/// in the next pass, after the tasks that were ready before it was spawned
/// have had their turn in this one.
#[test]
fn a_task_spawned_mid_pass_starts_in_the_next_pass() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let a = spawn({
                let log = log.clone();
                async move {
                    push(&log, "a: start");
                    let g = spawn({
                        let log = log.clone();
                        async move { push(&log, "g: start") }
                    })
                    .unwrap();
                    push(&log, "a: spawned g");
                    yield_now().await.unwrap();
                    push(&log, "a: end");
                    g.join().await.unwrap();
                }
            })
            .unwrap();
            let b = spawn({
                let log = log.clone();
                async move {
                    push(&log, "b: start");
                    yield_now().await.unwrap();
                    push(&log, "b: end");
                }
            })
            .unwrap();
            a.join().await.unwrap();
            b.join().await.unwrap();
        }
    });
    assert_eq!(
        entries(&log),
        [
            "a: start",
            "a: spawned g",
            "b: start",
            "g: start",
            "a: end",
            "b: end"
        ]
    );
}

/// A detached task outlives the task that spawned it: the spawner ends at
/// once, dropping the handle, and the grandchild still runs through a sleep
/// to completion.
#[test]
fn detached_task_outlives_its_spawner() {
    let got = run_virtual_clean(async {
        let (tx, rx) = oneshot::channel();
        let spawner = spawn(async move {
            spawn(async move {
                sleep(Duration::from_millis(2)).await.unwrap();
                tx.send(current().unwrap()).unwrap();
            })
            .map(|h| h.id())
        })
        .unwrap();
        let grandchild = spawner.join().await.unwrap().unwrap();
        assert_eq!(rx.await, Ok(grandchild));
        "done"
    });
    assert_eq!(got, "done");
}
