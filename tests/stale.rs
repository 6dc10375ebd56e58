//! Keys are never trusted stale: a waker, a timer entry or an fd event that
//! outlives what it named never resumes whoever came after.

mod util;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use futures::channel::oneshot;
use trapline::{sleep, spawn, traps, yield_now, TaskId, TrapError};
use util::{one_at_a_time, run_clean, run_virtual_clean, tcp_pair, Counted};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The tests of this file run one at a time, so that no other kernel of this
/// process is made or dropped while one runs (kernel ids are process-wide).
/// Stores a clone of the waker it is polled with, and completes at once.
async fn capture_waker(into: Rc<RefCell<Option<Waker>>>) {
    poll_fn(|cx| {
        *into.borrow_mut() = Some(cx.waker().clone());
        Poll::Ready(())
    })
    .await
}

/// Lets the kernel make a few passes, so that wakes queued now are gathered
/// and whatever they made ready has run.
async fn settle() {
    for _ in 0..3 {
        yield_now().await.expect("yield");
    }
}

/// A finished task's waker, woken after another task took its slot (same
/// index, new serial) — from the kernel's thread and from another thread —
/// never polls the new occupant, while the occupant's own waker, woken the
/// same way, does.
#[test]
fn stale_waker_after_slot_reuse_never_polls_the_new_occupant() {
    let _serial = one_at_a_time();
    let polls = Rc::new(Cell::new(0u64));
    let (ids, seen) = run_clean(async move {
        let stale = Rc::new(RefCell::new(None));
        let a = spawn(capture_waker(stale.clone())).expect("spawn A");
        let a_id = a.id();
        a.join().await.expect("A ends");
        let stale: Waker = stale.take().expect("A stored its waker");

        let (tx, rx) = oneshot::channel::<u8>();
        let own = Rc::new(RefCell::new(None));
        let b = spawn(Counted::new(polls.clone(), {
            let own = own.clone();
            async move {
                capture_waker(own).await;
                rx.await
            }
        }))
        .expect("spawn B");
        let b_id = b.id();
        let mut seen = Vec::new();
        settle().await;
        seen.push(polls.get()); // B polled once, waiting on the oneshot

        stale.wake_by_ref(); // same thread
        settle().await;
        seen.push(polls.get());

        let remote = stale.clone();
        thread::spawn(move || remote.wake())
            .join()
            .expect("waking thread");
        settle().await;
        seen.push(polls.get());

        // Control: B's own waker, woken the same way, does poll B.
        let own: Waker = own.take().expect("B stored its waker");
        thread::spawn(move || own.wake())
            .join()
            .expect("waking thread");
        settle().await;
        seen.push(polls.get());

        tx.send(5).expect("B waits");
        let got = b.join().await.expect("B ends").expect("B received");
        seen.push(polls.get());
        seen.push(u64::from(got));
        ((a_id, b_id), seen)
    });
    let (a_id, b_id): (TaskId, TaskId) = ids;
    assert_eq!(a_id.index(), b_id.index(), "B reuses A's slot");
    assert_ne!(a_id.serial(), b_id.serial());
    assert_eq!(
        seen,
        [1, 1, 1, 2, 3, 5],
        "polls of B: start, local stale wake, remote stale wake, own wake, end; value"
    );
}

/// A task cancelled at a sleep catches `Cancelled` and then waits on a
/// foreign future: when the cancelled sleep's old deadline passes, the task
/// is not polled.
#[test]
fn cancelled_sleep_timer_never_polls_the_task_later() {
    let _serial = one_at_a_time();
    let polls = Rc::new(Cell::new(0u64));
    let out = run_virtual_clean(async move {
        let (tx, rx) = oneshot::channel::<u8>();
        let task = spawn(Counted::new(polls.clone(), async move {
            let caught = sleep(ms(50)).await;
            let got = rx.await;
            (caught, got)
        }))
        .expect("spawn");
        settle().await; // the task is parked at its sleep
        let before = polls.get();
        assert!(traps::cancel(task.id()).expect("cancel"));
        settle().await; // the task took Cancelled and waits on the oneshot
        let after_cancel = polls.get();
        sleep(ms(100)).await.expect("sleep"); // past the old deadline
        let after_deadline = polls.get();
        tx.send(1).expect("the task waits");
        let result = task.join().await.expect("the task ends");
        ([before, after_cancel, after_deadline, polls.get()], result)
    });
    assert_eq!(out, ([1, 2, 2, 3], (Err(TrapError::Cancelled), Ok(1))));
}

/// A task cancelled at a sleep catches `Cancelled` and then sleeps again,
/// longer, shielded: the old deadline passing does not poll it; the new one
/// does.
#[test]
fn cancelled_sleep_then_another_sleep() {
    let _serial = one_at_a_time();
    let polls = Rc::new(Cell::new(0u64));
    let out = run_virtual_clean(async move {
        let task = spawn(Counted::new(polls.clone(), async {
            let caught = sleep(ms(50)).await;
            let again = trapline::shield(sleep(ms(80))).await;
            (caught, again)
        }))
        .expect("spawn");
        settle().await;
        assert!(traps::cancel(task.id()).expect("cancel"));
        let result = task.join().await.expect("the task ends");
        (result, polls.get())
    });
    // One poll to start, one for the cancel, one for the second deadline.
    assert_eq!(out, ((Err(TrapError::Cancelled), Ok(())), 3));
}

/// A task cancelled at a sleep ends; another task takes its slot. The dead
/// task's timer entry, reaching its deadline, names the old serial and never
/// polls the new occupant.
#[test]
fn cancelled_sleep_timer_after_slot_reuse() {
    let _serial = one_at_a_time();
    let polls = Rc::new(Cell::new(0u64));
    let out = run_virtual_clean(async move {
        let a = spawn(sleep(ms(50))).expect("spawn A");
        let a_id = a.id();
        settle().await; // A is parked at its sleep
        let a_result = a.cancel().await.expect("A ends");
        let (tx, rx) = oneshot::channel::<u8>();
        let b = spawn(Counted::new(polls.clone(), rx)).expect("spawn B");
        let same_slot = b.id().index() == a_id.index() && b.id() != a_id;
        settle().await;
        let before = polls.get();
        sleep(ms(100)).await.expect("sleep"); // past A's old deadline
        let after = polls.get();
        tx.send(2).expect("B waits");
        let got = b.join().await.expect("B ends").expect("B received");
        (a_result, same_slot, before, after, polls.get(), got)
    });
    assert_eq!(out, (Err(TrapError::Cancelled), true, 1, 1, 2, 2));
}

/// A task cancelled while it waits to read a socket, which then waits on
/// something else: data arriving later on that socket (an fd event for the
/// seat it left) does not poll it.
#[test]
fn cancelled_read_event_never_polls_the_task_later() {
    let _serial = one_at_a_time();
    let polls = Rc::new(Cell::new(0u64));
    let out = run_clean(async move {
        let (a, b) = tcp_pair().await.expect("a tcp pair");
        let a = Rc::new(a);
        let reader = a.clone();
        let (tx, rx) = oneshot::channel::<u8>();
        let task = spawn(Counted::new(polls.clone(), async move {
            let mut buf = [0u8; 8];
            let caught = reader
                .read(&mut buf)
                .await
                .map_err(|e| TrapError::from_io(&e).cloned());
            let got = rx.await;
            (caught, got)
        }))
        .expect("spawn");
        settle().await;
        assert!(traps::cancel(task.id()).expect("cancel"));
        settle().await;
        let after_cancel = polls.get();
        b.write_all(b"late").await.expect("write");
        sleep(ms(10)).await.expect("sleep"); // let the event arrive
        let after_data = polls.get();
        tx.send(3).expect("the task waits");
        let result = task.join().await.expect("the task ends");
        // The data is still there for the next reader.
        let mut buf = [0u8; 8];
        let n = a.read(&mut buf).await.expect("read");
        (
            after_cancel,
            after_data,
            polls.get(),
            result,
            buf[..n].to_vec(),
        )
    });
    assert_eq!(
        out,
        (
            2,
            2,
            3,
            (Err(Some(TrapError::Cancelled)), Ok(3)),
            b"late".to_vec()
        )
    );
}

/// A waker that outlives its kernel — kept from a finished `run` on this
/// thread — woken inside a later kernel never polls that kernel's tasks
/// (kernel ids are reused, so the waker must name its kernel's generation).
#[test]
fn waker_from_a_finished_kernel_never_polls_a_later_kernel() {
    let _serial = one_at_a_time();
    // The first kernel: its main task leaves its waker behind.
    let kept = Rc::new(RefCell::new(None));
    run_clean(capture_waker(kept.clone()));
    let stale: Waker = kept.take().expect("the main task stored its waker");

    // The second kernel: its main task waits on a oneshot that a helper fires
    // after waking the stale waker.
    let main_polls = Rc::new(Cell::new(0u64));
    let got = run_clean(Counted::new(main_polls.clone(), async move {
        let (tx, rx) = oneshot::channel::<u8>();
        let helper = spawn(async move {
            stale.wake_by_ref();
            let remote = stale.clone();
            thread::spawn(move || remote.wake())
                .join()
                .expect("waking thread");
            settle().await;
            let _ = tx.send(4);
        })
        .expect("spawn");
        let got = rx.await.expect("the helper sent");
        helper.join().await.expect("the helper ends");
        got
    }));
    assert_eq!(got, 4);
    // One poll to start, one for the oneshot (the helper has ended by then).
    // Regression: kernel ids used to be reused first-free while task serials
    // restart per kernel, so the stale waker named the new main task.
    assert_eq!(
        main_polls.get(),
        2,
        "the stale waker polled the new main task"
    );
}

/// A leaf outlives its task, holding a ticket that names the task's slot;
/// another task takes the slot and parks at a sleep. The stale ticket,
/// undone from inside the new occupant's poll and then from another task,
/// leaves the occupant's park alone: a ticket carries its leaf's sequence
/// number, unique in the process, and the occupant holds no park under it.
/// The occupant wakes at its own deadline, not a moment later.
#[test]
fn stale_ticket_after_slot_reuse_never_undoes_the_new_occupants_park() {
    let _serial = one_at_a_time();
    let out = run_virtual_clean(async move {
        let held = Rc::new(RefCell::new(Vec::new()));
        let a = spawn({
            let held = held.clone();
            async move {
                for _ in 0..2 {
                    let mut nap = Box::pin(sleep(Duration::from_secs(3600)));
                    // Pending: the leaf trapped, and has its ticket.
                    assert!(futures::poll!(nap.as_mut()).is_pending());
                    held.borrow_mut().push(nap);
                }
            }
        })
        .expect("spawn A");
        let a_id = a.id();
        a.join().await.expect("A ends");
        let (in_b, in_main) = {
            let mut held = held.borrow_mut();
            (held.pop().expect("a nap"), held.pop().expect("a nap"))
        };
        let t0 = trapline::clock().expect("clock");
        let b = spawn(async move {
            let mut own = std::pin::pin!(sleep(ms(10)));
            assert!(futures::poll!(own.as_mut()).is_pending(), "posted");
            drop(in_b); // in the same poll, beside B's own post
            own.await
        })
        .expect("spawn B");
        let same_slot = b.id().index() == a_id.index() && b.id() != a_id;
        settle().await; // B is parked at its sleep
        drop(in_main);
        let woke = trapline::timeout_after(Duration::from_secs(60), b.join()).await;
        let slept = trapline::clock().expect("clock") - t0;
        (
            same_slot,
            woke.map(|joined| matches!(joined, Ok(Ok(())))),
            slept,
        )
    });
    assert_eq!(out, (true, Ok(true), ms(10)));
}
