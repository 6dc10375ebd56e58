//! UniversalQueue between tasks, OS threads and other kernels, and
//! run_in_thread on the bounded pool: wakes across threads, cancel and
//! timeout while blocked, and what is left afterwards asserted exactly.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use trapline::{
    run_in_thread, sleep, spawn, timeout_after, yield_now, JoinError, TrapError, UniversalQueue,
    THREAD_POOL_SIZE,
};
use util::run_clean;

const SHORT: Duration = Duration::from_millis(5);

/// Tests that fill the worker pool run one at a time.
static POOL: Mutex<()> = Mutex::new(());

/// Yields until `cond` holds (bounded, so a bug fails instead of hanging).
async fn until(mut cond: impl FnMut() -> bool) {
    for _ in 0..20_000 {
        if cond() {
            return;
        }
        sleep(Duration::from_micros(500)).await.unwrap();
    }
    panic!("condition never held");
}

/// A task waiting in `get` is woken by a put from a plain OS thread.
#[test]
fn a_thread_put_wakes_a_waiting_task() {
    let got = run_clean(async {
        let queue = UniversalQueue::unbounded();
        let (go, gate) = mpsc::channel::<()>();
        let q = queue.clone();
        let producer = std::thread::spawn(move || {
            gate.recv().unwrap();
            q.put_blocking(42).unwrap();
        });
        let q = queue.clone();
        let getter = spawn(async move { q.get().await }).unwrap();
        until(|| queue.waiting_getters() == 1).await;
        go.send(()).unwrap();
        let got = getter.join().await.unwrap();
        producer.join().unwrap();
        got
    });
    assert_eq!(got, Ok(42));
}

/// A thread blocked in `get_blocking` is woken by a task's put.
#[test]
fn a_task_put_wakes_a_blocked_thread() {
    let queue = UniversalQueue::unbounded();
    let q = queue.clone();
    let consumer = std::thread::spawn(move || q.get_blocking());
    run_clean(async {
        queue.put("from a task").await.unwrap();
    });
    assert_eq!(consumer.join().unwrap(), Ok("from a task"));
}

/// Two kernels on two threads talk through one queue, both ways.
#[test]
fn two_kernels_talk_through_universal_queues() {
    let (ping, pong) = (UniversalQueue::bounded(1), UniversalQueue::bounded(1));
    let (p, q) = (ping.clone(), pong.clone());
    let other = std::thread::spawn(move || {
        trapline::run(async move {
            for _ in 0..100 {
                let n: u32 = p.get().await?;
                q.put(n + 1).await?;
            }
            Ok::<(), TrapError>(())
        })
    });
    let last = run_clean(async {
        let mut n = 0;
        for _ in 0..100 {
            ping.put(n).await.unwrap();
            n = pong.get().await.unwrap();
        }
        n
    });
    other.join().unwrap().unwrap().unwrap();
    assert_eq!(last, 100);
}

/// A get cancelled while blocked takes nothing; one timed out neither: the
/// item a thread puts afterwards is still in the queue.
#[test]
fn get_interrupted_while_blocked_loses_no_item() {
    let left = run_clean(async {
        let queue = UniversalQueue::unbounded();
        let q = queue.clone();
        let getter = spawn(async move { q.get().await }).unwrap();
        until(|| queue.waiting_getters() == 1).await;
        assert_eq!(getter.cancel().await.unwrap(), Err(TrapError::Cancelled));
        let waited = timeout_after(SHORT, queue.get()).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        assert_eq!(queue.waiting_getters(), 0);
        let q = queue.clone();
        std::thread::spawn(move || q.put_blocking(7).unwrap())
            .join()
            .unwrap();
        (queue.len(), queue.try_get())
    });
    assert_eq!(left, (1, Some(7)));
}

/// A put interrupted while the queue is full adds nothing.
#[test]
fn put_interrupted_while_blocked_adds_nothing() {
    let left = run_clean(async {
        let queue = UniversalQueue::bounded(1);
        queue.put(1).await.unwrap();
        let q = queue.clone();
        let putter = spawn(async move { q.put(2).await }).unwrap();
        yield_now().await.unwrap();
        assert_eq!(putter.cancel().await.unwrap(), Err(TrapError::Cancelled));
        let waited = timeout_after(SHORT, queue.put(3)).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        let all: Vec<i32> = std::iter::from_fn(|| queue.try_get()).collect();
        all
    });
    assert_eq!(left, [1]);
}

/// Blocking calls on a kernel thread are refused with a clear error rather
/// than stalling every task.
#[test]
fn blocking_calls_on_a_kernel_thread_are_refused() {
    run_clean(async {
        let queue = UniversalQueue::<u8>::unbounded();
        assert!(matches!(
            queue.get_blocking(),
            Err(TrapError::Unsupported(_))
        ));
        assert!(matches!(
            queue.put_blocking(1),
            Err(TrapError::Unsupported(_))
        ));
        assert!(queue.is_empty());
    });
}

/// run_in_thread returns the closure's value, and a panic as `Panicked`.
#[test]
fn run_in_thread_returns_values_and_panics() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    run_clean(async {
        let on = run_in_thread(|| std::thread::current().name().map(str::to_owned)).await;
        assert_eq!(on, Ok(Some("trapline-worker".to_owned())));
        let panicked = run_in_thread(|| -> u8 { panic!("in a worker") }).await;
        assert_eq!(panicked, Err(JoinError::Panicked("in a worker".into())));
    });
}

/// Cancelling the await abandons the job: the task goes on at once while
/// the closure still blocks, other tasks run meanwhile, and the result the
/// closure returns later is dropped on the worker.
#[test]
fn run_in_thread_cancelled_abandons_the_result() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    struct Tell(mpsc::Sender<&'static str>);
    impl Drop for Tell {
        fn drop(&mut self) {
            let _ = self.0.send("result dropped");
        }
    }
    let (release, gate) = mpsc::channel::<()>();
    let (tell, told) = mpsc::channel();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    run_clean(async move {
        let waiter = spawn(async move {
            run_in_thread(move || {
                s.fetch_add(1, Ordering::SeqCst);
                gate.recv().unwrap();
                Tell(tell)
            })
            .await
            .map(drop)
        })
        .unwrap();
        until(|| started.load(Ordering::SeqCst) == 1).await;
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let t = ticks.clone();
        let ticker = spawn(async move {
            for _ in 0..3 {
                yield_now().await.unwrap();
                t.set(t.get() + 1);
            }
        })
        .unwrap();
        ticker.join().await.unwrap();
        assert_eq!(ticks.get(), 3, "the kernel runs while the closure blocks");
        let joined = waiter.cancel().await.unwrap();
        assert_eq!(joined, Err(JoinError::Interrupted(TrapError::Cancelled)));
        release.send(()).unwrap();
    });
    assert_eq!(
        told.recv_timeout(Duration::from_secs(10)),
        Ok("result dropped")
    );
}

/// A timed-out await abandons the job too.
#[test]
fn run_in_thread_timed_out() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    run_clean(async {
        let (release, gate) = mpsc::channel::<()>();
        let waited = timeout_after(SHORT, run_in_thread(move || gate.recv())).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));
        release.send(()).unwrap();
    });
}

/// The pool never runs more than THREAD_POOL_SIZE jobs at once, every job
/// runs, and a job abandoned before it started never runs.
#[test]
fn the_pool_is_bounded_and_unstarted_jobs_are_skipped() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let (inside, most, ran) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let skipped = Arc::new(AtomicUsize::new(0));
    let (i, m, r, g, sk) = (
        inside.clone(),
        most.clone(),
        ran.clone(),
        gate.clone(),
        skipped.clone(),
    );
    run_clean(async move {
        let mut jobs = Vec::new();
        for _ in 0..THREAD_POOL_SIZE {
            let (i, m, r, g) = (i.clone(), m.clone(), r.clone(), g.clone());
            jobs.push(
                spawn(run_in_thread(move || {
                    let now = i.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    let (open, cv) = &*g;
                    let mut open = open.lock().unwrap();
                    while !*open {
                        open = cv.wait(open).unwrap();
                    }
                    i.fetch_sub(1, Ordering::SeqCst);
                    r.fetch_add(1, Ordering::SeqCst);
                }))
                .unwrap(),
            );
        }
        until(|| i.load(Ordering::SeqCst) == THREAD_POOL_SIZE).await;
        // Every worker is busy: this one waits in the pool's queue.
        let extra = spawn(run_in_thread(move || {
            sk.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
        yield_now().await.unwrap();
        assert!(extra.cancel().await.unwrap().is_err());
        let (open, cv) = &*g;
        *open.lock().unwrap() = true;
        cv.notify_all();
        for job in jobs {
            job.join().await.unwrap().unwrap();
        }
        // Why `skipped` is exactly 0 once this round is over, with no
        // sleeping: (1) the abandoned job was queued before any job of this
        // round and was marked abandoned (the cancel above returned) before
        // the gate opened, so no worker was free to take it earlier; (2)
        // workers take jobs from one FIFO queue (`blocking.rs`), one at a
        // time, and check the mark when they take a job; (3) the round's
        // jobs meet at a barrier of the pool's size, so it releases only
        // when every worker is inside one of them — by then the queue in
        // front of them, the abandoned job included, has been taken. Had the
        // abandoned job run instead of being skipped, `skipped` would be 1.
        let barrier = Arc::new(std::sync::Barrier::new(THREAD_POOL_SIZE));
        let mut round = Vec::new();
        for _ in 0..THREAD_POOL_SIZE {
            let b = barrier.clone();
            round.push(
                spawn(run_in_thread(move || {
                    b.wait();
                }))
                .unwrap(),
            );
        }
        for job in round {
            job.join().await.unwrap().unwrap();
        }
    });
    assert_eq!(
        (
            most.load(Ordering::SeqCst),
            ran.load(Ordering::SeqCst),
            skipped.load(Ordering::SeqCst)
        ),
        (THREAD_POOL_SIZE, THREAD_POOL_SIZE, 0)
    );
}

/// The producer/consumer example built beside this test.
fn producer_consumer() -> std::process::Command {
    let mut exe = std::env::current_exe().unwrap();
    exe.pop();
    exe.pop();
    exe.push("examples");
    exe.push("producer_consumer");
    std::process::Command::new(exe)
}

/// Regression: an `--items` whose sum would overflow a u64 is refused with
/// a clear error instead of a panic.
#[test]
fn producer_consumer_example_refuses_too_many_items() {
    let out = producer_consumer()
        .args(["--items", "4294967297"])
        .output()
        .expect("the example runs (cargo test builds the examples)");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "producer_consumer: --items 4294967297: want at most 4294967296\n"
    );
}

/// The producer/consumer example adds up every item exactly once.
#[test]
fn producer_consumer_example_processes_every_item_once() {
    let out = producer_consumer()
        .args(["--items", "1000", "--consumers", "3"])
        .output()
        .expect("the example runs (cargo test builds the examples)");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().next(),
        Some("1000 items, 3 consumers: total 499500 (expected 499500)")
    );
}

/// A getter dropped after a `put` took its waker (a `select!` whose other
/// branch won in the same pass) never takes the item: it passes the wake
/// on to the next waiting getter, which gets the item.
#[test]
fn a_getter_dropped_after_its_waker_was_taken_passes_the_wake_on() {
    use futures::FutureExt;
    let out = run_clean(async {
        let queue = UniversalQueue::unbounded();
        let event = std::rc::Rc::new(trapline::sync::Event::new());
        let (q, e) = (queue.clone(), event.clone());
        let first = spawn(async move {
            futures::select_biased! {
                r = e.wait().fuse() => r.map(|()| None),
                item = q.get().fuse() => item.map(Some),
            }
        })
        .unwrap();
        until(|| queue.waiting_getters() == 1).await;
        let q = queue.clone();
        let second = spawn(async move { q.get().await }).unwrap();
        until(|| queue.waiting_getters() == 2).await;
        queue.try_put(7).unwrap(); // takes the first getter's waker
        event.set(); // the first getter's select drops its get
        let first = first.join().await.unwrap();
        // Bounded, so a lost wake fails instead of hanging.
        let second = timeout_after(Duration::from_secs(5), second.join()).await;
        (first, second, queue.len(), queue.waiting_getters())
    });
    assert_eq!(out, (Ok(None), Ok(Ok(Ok(7))), 0, 0));
}
