//! The two ways a yield goes back to the ready queue: under the task's own
//! waker straight from the loop, inside a foreign combinator through the
//! combinator's waker; and the completion of a yield, which only looks at
//! the trap slot (to take back a yield completed in the poll that made it).

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use trapline::{spawn, yield_now, TrapError};

/// Two tasks yielding in turn run in turn: each yield puts its task at the
/// back of the ready queue, behind the other one.
#[test]
fn yields_under_the_task_waker_alternate() {
    let order = trapline::run(async {
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let other = {
            let order = order.clone();
            spawn(async move {
                for i in 0..3 {
                    order.borrow_mut().push(("b", i));
                    yield_now().await?;
                }
                Ok::<(), TrapError>(())
            })?
        };
        for i in 0..3 {
            order.borrow_mut().push(("a", i));
            yield_now().await?;
        }
        other.join().await??;
        let order = order.borrow().clone();
        Ok::<_, Box<dyn std::error::Error>>(order)
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        order,
        [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    );
}

/// Yields inside `FuturesUnordered` trap under the combinator's wakers, not
/// the task's: the kernel wakes those, and each child is polled again.
#[test]
fn yields_inside_a_foreign_combinator_wake_its_children() {
    let done = trapline::run(async {
        let mut children: FuturesUnordered<_> = (0..4)
            .map(|i| async move {
                for _ in 0..3 {
                    yield_now().await?;
                }
                Ok::<u32, TrapError>(i)
            })
            .collect();
        let mut done = Vec::new();
        while let Some(i) = children.next().await {
            done.push(i?);
        }
        done.sort_unstable();
        Ok::<_, TrapError>(done)
    })
    .unwrap()
    .unwrap();
    assert_eq!(done, [0, 1, 2, 3]);
}

/// A yield polled again in the same poll of its task (a hand-written loop
/// over a child) completes, its post is taken back, and the task ends
/// normally.
#[test]
fn a_yield_completed_in_the_poll_that_made_it_is_harmless() {
    let polls = trapline::run(async {
        let polls = Rc::new(Cell::new(0));
        let counted = polls.clone();
        let task = spawn(async move {
            let mut y = pin!(yield_now());
            std::future::poll_fn(|cx| {
                counted.set(counted.get() + 1);
                let first = y.as_mut().poll(cx);
                assert!(first.is_pending(), "a yield traps first");
                y.as_mut().poll(cx)
            })
            .await
        })?;
        let result = task.join().await?;
        Ok::<_, Box<dyn std::error::Error>>((result, polls.get()))
    })
    .unwrap()
    .unwrap();
    assert_eq!(polls, (Ok(()), 1), "completed in its first poll");
}

/// A task cancelled while a yield has it in the ready queue: the yield
/// completes (the task was resumed before the cancel came), and the next
/// one fails with `Cancelled` at its trap.
#[test]
fn a_cancel_after_a_yield_reaches_the_next_one() {
    let seen = trapline::run(async {
        let task = spawn(async {
            let first = yield_now().await;
            let second = yield_now().await;
            (first, second)
        })?;
        yield_now().await?; // the task runs, yields, and waits behind this one
        Ok::<_, Box<dyn std::error::Error>>(task.cancel().await?)
    })
    .unwrap()
    .unwrap();
    assert_eq!(seen, (Ok(()), Err(TrapError::Cancelled)));
}

/// A future that traps a yield and completes it in every poll, then waits
/// on a sleep, sleeps: the yield's post is taken back each time, so the
/// task is polled once to start and once when the sleep ends, never in a
/// busy loop in between. (On the real clock: a busy loop ends with the
/// sleep and fails the count, where a virtual clock would never move.)
#[test]
fn a_yield_completed_in_every_poll_does_not_keep_its_task_running() {
    let polls = trapline::run(async {
        let polls = Rc::new(Cell::new(0));
        let counted = polls.clone();
        let task = spawn(async move {
            let mut sleep = pin!(trapline::sleep(Duration::from_millis(30)));
            std::future::poll_fn(|cx| {
                counted.set(counted.get() + 1);
                let mut y = pin!(yield_now());
                assert!(y.as_mut().poll(cx).is_pending(), "a yield traps first");
                assert!(y.as_mut().poll(cx).is_ready(), "then completes");
                sleep.as_mut().poll(cx)
            })
            .await
        })?;
        task.join().await??;
        Ok::<_, Box<dyn std::error::Error>>(polls.get())
    })
    .unwrap();
    assert_eq!(
        polls.unwrap(),
        2,
        "one poll to start, one when the sleep ends"
    );
}
