//! Trap leaves inside foreign combinators: `join!`, `select!` and
//! `FuturesUnordered`. Each leaf parks under the waker it was polled with, so
//! a combinator re-polls exactly the child whose condition fired.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use trapline::{sleep, spawn, TrapError};
use util::{assert_clean, run_virtual, run_virtual_clean, tcp_pair, Counted};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// 50 sleeping children with distinct durations (1..=50 ms) in a
/// `FuturesUnordered` finish in deadline order, and each child is polled
/// exactly twice: once when pushed and once when its own timer fires. A fired
/// sleep never re-polls its siblings, and the main task is not polled much
/// more than once per wake (no spinning).
#[test]
fn futures_unordered_of_sleeps_polls_each_child_once_per_wake() {
    let child_polls = Rc::new(Cell::new(0u64));
    let polls = child_polls.clone();
    let (order, stats) = run_virtual(async move {
        let mut set = FuturesUnordered::new();
        for i in 1..=50u64 {
            set.push(Counted::new(polls.clone(), async move {
                sleep(ms(i)).await.map(|()| i)
            }));
        }
        let mut order = Vec::new();
        while let Some(done) = set.next().await {
            order.push(done.expect("a sleep ends normally"));
        }
        order
    });
    assert_clean(&stats);
    assert_eq!(order, (1..=50).collect::<Vec<_>>());
    assert_eq!(child_polls.get(), 100, "1 initial poll + 1 per wake, each");
    // The main task is the only task. It is polled once to start, once more
    // because FuturesUnordered yields after polling every child, and then at
    // most once per pass in which a child woke it.
    assert!(
        stats.polls <= 2 + 50,
        "the main task spun: {} polls for 50 wakes ({stats:?})",
        stats.polls
    );
    assert!(
        stats.polls <= stats.wakeups + 1,
        "more polls than wakes: {stats:?}"
    );
}

/// `select!` between a sleep and a read whose data arrives first: the read
/// wins, and the losing sleep's park is released with it — its deadline later
/// passing does not poll the task again, and no timer is left.
#[test]
fn select_sleep_vs_read_releases_the_losing_sleep() {
    let main_polls = Rc::new(Cell::new(0u64));
    let polls = main_polls.clone();
    let (out, stats) = run_virtual(Counted::new(main_polls, async move {
        let (a, b) = tcp_pair().await.expect("a tcp pair");
        let writer = spawn(async move {
            sleep(ms(5)).await?;
            b.write_all(b"news").await?;
            Ok::<_, std::io::Error>(b)
        })
        .expect("spawn");
        let mut buf = [0u8; 16];
        let start = polls.get();
        let winner = futures::select_biased! {
            r = sleep(ms(80)).fuse() => Err(r),
            r = a.read(&mut buf).fuse() => Ok(r.expect("read")),
        };
        // Polls so far: the one that trapped both, the one the read woke.
        let after_select = polls.get() - start;
        // Past the losing sleep's deadline: nothing but this sleep wakes us.
        sleep(ms(120)).await.expect("sleep");
        let after_wait = polls.get() - start;
        let _b = writer.join().await.expect("writer").expect("write");
        (winner.map(|n| buf[..n].to_vec()), after_select, after_wait)
    }));
    assert_clean(&stats);
    let (winner, after_select, after_wait) = out;
    assert_eq!(winner, Ok(b"news".to_vec()));
    assert_eq!(after_select, 1, "the read's wake polls the task once");
    assert_eq!(
        after_wait, 2,
        "only the 120 ms sleep polls the task again; the dropped 80 ms sleep must not"
    );
}

/// `select!` in which the sleep wins: the losing read's seat on the fd is
/// released, so a later read of the same stream is not `ResourceBusy`.
#[test]
fn select_sleep_wins_then_read_again() {
    let out = run_virtual_clean(async {
        let (a, b) = tcp_pair().await.expect("a tcp pair");
        let mut buf = [0u8; 16];
        let first = futures::select_biased! {
            r = sleep(ms(5)).fuse() => { r.expect("sleep"); None },
            r = a.read(&mut buf).fuse() => Some(r.map_err(|e| e.kind())),
        };
        b.write_all(b"later").await.expect("write");
        let n = a.read(&mut buf).await.expect("a second read is not busy");
        (first, buf[..n].to_vec())
    });
    assert_eq!(out, (None, b"later".to_vec()));
}

/// `join!` of two reads on two different streams: both park at once (one
/// reader per fd), the first to get data does not release the other, and
/// both complete with their own bytes.
#[test]
fn join_of_two_reads_on_two_streams() {
    let out = run_virtual_clean(async {
        let (a1, b1) = tcp_pair().await.expect("pair 1");
        let (a2, b2) = tcp_pair().await.expect("pair 2");
        let writer = spawn(async move {
            sleep(ms(5)).await?;
            b2.write_all(b"second stream").await?;
            sleep(ms(5)).await?;
            b1.write_all(b"first stream").await?;
            Ok::<_, std::io::Error>((b1, b2))
        })
        .expect("spawn");
        let (mut buf1, mut buf2) = ([0u8; 32], [0u8; 32]);
        let (r1, r2) = futures::join!(a1.read(&mut buf1), a2.read(&mut buf2));
        let _keep = writer.join().await.expect("writer").expect("writes");
        let (n1, n2) = (r1.expect("read 1"), r2.expect("read 2"));
        (buf1[..n1].to_vec(), buf2[..n2].to_vec())
    });
    assert_eq!(out, (b"first stream".to_vec(), b"second stream".to_vec()));
}

/// `join!` of sleeps: every branch keeps its own park while the others fire,
/// and each ends normally, in deadline order.
#[test]
fn join_of_sleeps_each_keeps_its_park() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    let (out, stats) = run_virtual(async move {
        let step = |n: u64| {
            let o = o.clone();
            async move {
                let r = sleep(ms(n)).await;
                o.borrow_mut().push(n);
                r
            }
        };
        // Branches in deadline order: if a stalled machine lets several
        // deadlines pass at once, join! still finishes them in this order.
        futures::join!(step(5), step(10), step(15))
    });
    assert_clean(&stats);
    assert_eq!(out, (Ok(()), Ok(()), Ok(())));
    assert_eq!(*order.borrow(), [5, 10, 15]);
    // One poll to start, then one per fired sleep at most.
    assert!(stats.polls <= 4, "the main task spun: {stats:?}");
}

/// A cancellation reaches every child of a `FuturesUnordered` that is waiting
/// when it arrives, not just the first one polled: all three sleeps fail with
/// `Cancelled`, each in its own child, and the task ends at once.
#[test]
fn cancel_reaches_every_waiting_child_of_futures_unordered() {
    let (out, stats) = run_virtual(async {
        let task = spawn(async {
            let mut set: FuturesUnordered<_> = (1..=3u64)
                .map(|i| sleep(ms(50 * i)).map(move |r| (i, r)))
                .collect();
            let mut seen = Vec::new();
            while let Some(x) = set.next().await {
                seen.push(x);
            }
            seen
        })
        .expect("spawn");
        sleep(ms(5)).await.expect("sleep");
        task.cancel().await.expect("the task ends")
    });
    assert_clean(&stats);
    let mut out = out;
    out.sort_by_key(|(i, _)| *i);
    assert_eq!(
        out,
        [
            (1, Err(TrapError::Cancelled)),
            (2, Err(TrapError::Cancelled)),
            (3, Err(TrapError::Cancelled)),
        ]
    );
}

/// A `FuturesUnordered` of `timeout_after`s with distinct limits, and a plain
/// sleep among them: each timeout is delivered only inside its own child,
/// with its own id, in deadline order; the plain sleep ends normally in its
/// place.
#[test]
fn futures_unordered_of_timeouts_keeps_them_apart() {
    let out = run_virtual_clean(async {
        // Pushed (so first polled) in deadline order, 25 ms apart.
        let mut set = FuturesUnordered::new();
        for i in 1..=5u64 {
            let limit = ms(25 * i);
            set.push(if i == 3 {
                sleep(limit).map(|r| (3, r.map(|()| Ok(())))).boxed_local()
            } else {
                trapline::timeout_after(limit, sleep(Duration::from_secs(60)))
                    .map(move |r| (i, r))
                    .boxed_local()
            });
        }
        let mut order = Vec::new();
        while let Some(x) = set.next().await {
            order.push(x);
        }
        order
    });
    let labels: Vec<u64> = out.iter().map(|(i, _)| *i).collect();
    assert_eq!(labels, [1, 2, 3, 4, 5]);
    let mut ids = Vec::new();
    for (i, r) in &out {
        match r {
            Err(TrapError::TimedOut(id)) if *i != 3 => ids.push(*id),
            Ok(Ok(())) if *i == 3 => {}
            other => panic!("child {i}: unexpected {other:?}"),
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each child got its own timeout id: {out:?}");
}

/// A `timeout_after` that loses a `select!` is dropped before its limit and
/// unsets itself: its deadline later passing does not poll the task, and no
/// timer or timeout is left.
#[test]
fn select_dropped_timeout_unsets_itself() {
    let main_polls = Rc::new(Cell::new(0u64));
    let polls = main_polls.clone();
    let (out, stats) = run_virtual(Counted::new(main_polls, async move {
        let start = polls.get();
        let won = futures::select_biased! {
            r = trapline::timeout_after(ms(60), sleep(Duration::from_secs(60))).fuse() => Err(r),
            r = sleep(ms(5)).fuse() => Ok(r),
        };
        let after_select = polls.get() - start;
        sleep(ms(100)).await.expect("sleep"); // past the dropped timeout's limit
        (won, after_select, polls.get() - start)
    }));
    assert_clean(&stats);
    assert_eq!(out, (Ok(Ok(())), 1, 2));
}
