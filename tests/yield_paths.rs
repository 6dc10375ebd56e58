//! The two ways a yield goes back to the ready queue: under the task's own
//! waker straight from the loop, inside a foreign combinator through the
//! combinator's waker; and the completion of a yield, which does not visit
//! the trap slot.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;

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
/// over a child) completes; its post, still in the slot, only makes the
/// task run once more, and the task ends normally.
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
