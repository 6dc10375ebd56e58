//! Queue<T>: FIFO order, bounded back-pressure, `join`/`task_done`, and the
//! interrupt invariants: an interrupted `get` loses no item, an interrupted
//! `put` adds nothing, every time with the queue's contents asserted exactly.

mod util;

use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use trapline::sync::{Event, Queue};
use trapline::{spawn, timeout_after, yield_now, TrapError};
use util::{entries, log, push, run_virtual_clean};

const SHORT: Duration = Duration::from_millis(5);

async fn settle() {
    for _ in 0..3 {
        yield_now().await.unwrap();
    }
}

/// Drains a queue without waiting, in order.
fn drain<T>(queue: &Queue<T>) -> Vec<T> {
    std::iter::from_fn(|| queue.try_get()).collect()
}

/// Items come out in the order they went in; getters are served in the
/// order they waited.
#[test]
fn fifo_items_and_fifo_getters() {
    let order = run_virtual_clean(async {
        let queue = Rc::new(Queue::unbounded());
        let log = log();
        let mut getters = Vec::new();
        for name in ["a", "b", "c"] {
            let (q, g) = (queue.clone(), log.clone());
            getters.push(
                spawn(async move {
                    let item: u32 = q.get().await.unwrap();
                    push(&g, format!("{name}:{item}"));
                })
                .unwrap(),
            );
        }
        settle().await;
        assert_eq!(queue.getters(), 3);
        for i in 1..=3 {
            queue.put(i).await.unwrap();
        }
        assert_eq!(queue.len(), 0, "handed straight to the getters");
        for t in &getters {
            t.join().await.unwrap();
        }
        entries(&log)
    });
    assert_eq!(order, ["a:1", "b:2", "c:3"]);
}

/// A bounded queue makes `put` wait while full, and admits waiting putters
/// in order as room is made.
#[test]
fn bounded_put_waits_and_putters_are_admitted_in_order() {
    run_virtual_clean(async {
        let queue = Rc::new(Queue::bounded(2));
        let q = queue.clone();
        let producer = spawn(async move {
            for i in 0..6 {
                q.put(i).await?;
            }
            Ok::<(), TrapError>(())
        })
        .unwrap();
        settle().await;
        assert_eq!(
            (queue.len(), queue.putters(), queue.is_full()),
            (2, 1, true)
        );
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(queue.get().await.unwrap());
            assert!(queue.len() <= 2);
        }
        producer.join().await.unwrap().unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4, 5]);
        assert_eq!((queue.len(), queue.putters()), (0, 0));
    });
}

/// A getter cancelled while blocked takes nothing: the next item put stays
/// in the queue (or goes to the next getter).
#[test]
fn get_cancelled_while_blocked_loses_no_item() {
    run_virtual_clean(async {
        let queue = Rc::new(Queue::unbounded());
        let q = queue.clone();
        let getter = spawn(async move { q.get().await }).unwrap();
        settle().await;
        assert_eq!(queue.getters(), 1);
        assert_eq!(getter.cancel().await.unwrap(), Err(TrapError::Cancelled));
        assert_eq!(queue.getters(), 0);
        queue.put("kept").await.unwrap();
        assert_eq!(drain(&queue), ["kept"]);
    });
}

/// A getter timed out while blocked takes nothing either.
#[test]
fn get_timed_out_while_blocked_loses_no_item() {
    run_virtual_clean(async {
        let queue = Queue::unbounded();
        let waited = timeout_after(SHORT, queue.get()).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        assert_eq!(queue.getters(), 0);
        queue.put(7).await.unwrap();
        assert_eq!((queue.len(), queue.unfinished()), (1, 1));
        assert_eq!(drain(&queue), [7]);
    });
}

/// An item handed to a getter that is cancelled at the same moment is
/// returned by that getter, not dropped.
#[test]
fn get_handed_an_item_and_cancelled_at_once_returns_it() {
    run_virtual_clean(async {
        let queue = Rc::new(Queue::unbounded());
        let q = queue.clone();
        let getter = spawn(async move { q.get().await }).unwrap();
        settle().await;
        queue.put(42).await.unwrap(); // handed over ...
        let joined = getter.cancel().await.unwrap(); // ... and cancelled at once
        assert_eq!(joined, Ok(42));
        assert!(queue.is_empty());
    });
}

/// An item handed to a getter that is dropped before it looks goes to the
/// next getter, or back to the front of the queue.
#[test]
fn get_dropped_after_the_hand_over_gives_the_item_back() {
    run_virtual_clean(async {
        let queue = Rc::new(Queue::unbounded());
        let go = Rc::new(Event::new());
        let (q, g) = (queue.clone(), go.clone());
        let dropper = spawn(async move {
            let mut get = Box::pin(q.get());
            poll_fn(|cx| {
                assert!(get.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            g.wait().await.unwrap();
            drop(get);
        })
        .unwrap();
        settle().await;
        queue.put(1).await.unwrap(); // handed to the dropper
        queue.put(2).await.unwrap(); // queued behind it
        go.set();
        dropper.join().await.unwrap();
        assert_eq!(drain(&queue), [1, 2], "given back to the front");
        assert_eq!(queue.unfinished(), 2);
    });
}

/// A putter cancelled while blocked on a full queue adds nothing; one timed
/// out adds nothing either, and the queue holds exactly what it held.
#[test]
fn put_interrupted_while_blocked_adds_nothing() {
    run_virtual_clean(async {
        let queue = Rc::new(Queue::bounded(1));
        queue.put("first").await.unwrap();
        let q = queue.clone();
        let putter = spawn(async move { q.put("cancelled").await }).unwrap();
        settle().await;
        assert_eq!(queue.putters(), 1);
        assert_eq!(putter.cancel().await.unwrap(), Err(TrapError::Cancelled));
        let waited = timeout_after(SHORT, queue.put("timed out")).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        assert_eq!(
            (queue.len(), queue.putters(), queue.unfinished()),
            (1, 0, 1)
        );
        assert_eq!(drain(&queue), ["first"]);
    });
}

/// A putter admitted (its item moved in) and cancelled at the same moment
/// has put its item, whole.
#[test]
fn put_admitted_and_cancelled_at_once_has_put_its_item() {
    run_virtual_clean(async {
        let queue = Rc::new(Queue::bounded(1));
        queue.put(1).await.unwrap();
        let q = queue.clone();
        let putter = spawn(async move { q.put(2).await }).unwrap();
        settle().await;
        assert_eq!(queue.get().await.unwrap(), 1); // room: 2 moves in ...
        assert_eq!(putter.cancel().await.unwrap(), Ok(())); // ... whole
        assert_eq!(drain(&queue), [2]);
    });
}

/// `join` waits until every item put was marked done; cancelled and timed
/// out joins leave; too many `task_done` calls are refused.
#[test]
fn join_and_task_done() {
    let order = run_virtual_clean(async {
        let queue = Rc::new(Queue::unbounded());
        let log = log();
        for i in 0..3 {
            queue.put(i).await.unwrap();
        }
        let (q, g) = (queue.clone(), log.clone());
        let joiner = spawn(async move {
            q.join().await?;
            push(&g, "joined");
            Ok::<(), TrapError>(())
        })
        .unwrap();
        let q = queue.clone();
        let cancelled = spawn(async move { q.join().await }).unwrap();
        settle().await;
        assert_eq!(cancelled.cancel().await.unwrap(), Err(TrapError::Cancelled));
        let waited = timeout_after(SHORT, queue.join()).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        for i in 0..3 {
            assert_eq!(queue.get().await.unwrap(), i);
            push(&log, format!("done {i}"));
            queue.task_done().unwrap();
        }
        joiner.join().await.unwrap().unwrap();
        assert!(queue.task_done().is_err());
        assert_eq!(queue.unfinished(), 0);
        entries(&log)
    });
    assert_eq!(order, ["done 0", "done 1", "done 2", "joined"]);
}
