//! Regression tests, one per bug a review found (scratch reproductions
//! t1 … t9). Each test states what used to go wrong and what must hold now.
//!
//! Nothing here asserts elapsed time: short sleeps only create orderings
//! (on the virtual clock where no other thread is involved), and
//! `timeout_after` is used only as a guard against hangs.
//! The tests run one at a time (see `util::one_at_a_time`), because one of them
//! needs the OS to hand a closed fd number to the next socket.

mod util;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::Either;
use futures::task::{waker, ArcWake};
use trapline::net::{TcpListener, TcpStream};
use trapline::traps::{self, sched_wake, Leaf, QueueId, Ticket, Trap};
use trapline::{current, sleep, spawn, timeout_after, yield_now, Builder, Kernel, TrapError};
use util::{
    assert_clean, entries, log, one_at_a_time, push, run_clean, run_virtual, run_virtual_clean,
    run_with_grace, tcp_pair,
};

const HOUR: Duration = Duration::from_secs(3600);

/// How long a hang guard waits before calling a test hung.
const GUARD: Duration = Duration::from_secs(2);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The tests of this file run one at a time: the fd-reuse test needs no
/// other test of this process to open or close fds while it runs.
/// A sleep leaf written with the trap ABI, which records the ticket it was
/// given each time it trapped.
struct Nap {
    deadline: Instant,
    leaf: Leaf,
    tickets: Vec<Ticket>,
}

impl Nap {
    fn new(deadline: Instant) -> Nap {
        Nap {
            deadline,
            leaf: Leaf::new(),
            tickets: Vec::new(),
        }
    }
}

impl Future for Nap {
    type Output = Result<(), TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            this.leaf.done();
            return Poll::Ready(Ok(()));
        }
        match this.leaf.trap(
            cx,
            Trap::Sleep {
                deadline: this.deadline,
            },
        ) {
            Ok(()) => {
                this.tickets.extend(this.leaf.ticket());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// A semaphore-style acquire written with the trap ABI: takes a permit if
/// there is one, else waits in `queue` (`SchedWait`) and looks again.
async fn acquire(queue: QueueId, permits: Rc<Cell<u32>>) -> Result<(), TrapError> {
    let mut leaf = Leaf::new();
    poll_fn(|cx| {
        if permits.get() > 0 {
            permits.set(permits.get() - 1);
            leaf.done();
            return Poll::Ready(Ok(()));
        }
        match leaf.trap(cx, Trap::SchedWait { queue }) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    })
    .await
}

/// (t1) A timeout that expires beside a parked sleep of the same task.
///
/// Used to go wrong: an interrupt (timeout expiry, cancel) *undid* every park
/// of the task, so the sibling sleep, polled again, parked a second time with
/// the same task, leaf and deadline. The heap then held two entries that both
/// looked live; once enough stale entries made the heap compact, both were
/// kept and counted live, and the kernel's live-timer count never came back
/// to zero (or underflowed). Must hold now: the interrupt only resumes the
/// parks; the sibling re-traps under the same ticket and keeps its one timer
/// entry (entries carry a unique tie), the sleep ends exactly as asked, and
/// the kernel ends the run with no timer, timeout or park left.
#[test]
fn interrupt_resumes_sibling_parks_without_duplicating_timers() {
    let _serial = one_at_a_time();
    let (out, stats) = run_virtual(async {
        let (release, released) = oneshot::channel::<()>();
        let long = async {
            match futures::future::select(pin!(sleep(HOUR)), released).await {
                Either::Left((slept, _)) => format!("the hour-long sleep ended: {slept:?}"),
                // The sleep is dropped here, parked: its timer entry goes stale.
                Either::Right((signal, _sleep)) => format!("released: {signal:?}"),
            }
        };
        let other = async {
            // Expires while `long` is parked: interrupts the task.
            let expired = timeout_after(ms(2), sleep(HOUR)).await;
            // Over 1024 stale timer entries, so the heap compacts...
            let mut finished = 0;
            for _ in 0..2000 {
                if timeout_after(HOUR, async {}).await == Ok(()) {
                    finished += 1;
                }
            }
            // ... in the pass that waits for this sleep (nothing is ready).
            let short = sleep(ms(1)).await;
            release.send(()).unwrap();
            (expired, finished, short)
        };
        futures::join!(long, other)
    });
    let (long, (expired, finished, short)) = out;
    assert_eq!(long, "released: Ok(())");
    assert!(
        matches!(expired, Err(TrapError::TimedOut(_))),
        "{expired:?}"
    );
    assert_eq!(finished, 2000);
    assert_eq!(short, Ok(()));
    assert_eq!((stats.timers, stats.timeouts, stats.parked), (0, 0, 0));
    assert_clean(&stats);
}

/// (t2) A task that cancels itself after a sibling leaf trapped in the same poll.
///
/// Used to go wrong: `join!(sleep(HOUR), async { cancel(me) })` marked the
/// task cancelled, but the sleep had already posted its trap in that poll,
/// so the task parked in the hour-long sleep and the cancellation waited for
/// a next trap that never came. Must hold now: the cancel is delivered at the
/// park made in that very poll: the sleep ends with `Err(Cancelled)`, and the
/// cancel reports that it was the one that cancelled.
#[test]
fn self_cancel_reaches_a_sibling_that_trapped_in_the_same_poll() {
    let _serial = one_at_a_time();
    let joined = run_virtual_clean(async {
        let task = spawn(async {
            let me = current().unwrap();
            futures::join!(sleep(HOUR), async { traps::cancel(me) })
        })
        .unwrap();
        timeout_after(GUARD, task.join()).await
    });
    assert_eq!(joined, Ok(Ok((Err(TrapError::Cancelled), Ok(true)))));
}

/// (t3) A socket that outlives its kernel's run, then a new socket with its fd number.
///
/// Used to go wrong: a listener that had trapped (so its fd was registered)
/// and was returned from `run` kept its entry in the kernel's fd table. It was
/// then dropped outside any kernel (its `IoRelease` found no kernel) and its
/// fd closed, which silently removed it from epoll. A new listener given the
/// same fd number in a later run on the same `Kernel` looked registered, so it
/// was never registered again and never saw an event: its `accept` hung.
/// Must hold now: when a run ends the kernel releases every registration left
/// (`Stats::released_at_exit` counts them: exactly 1 here), and the new
/// listener on the reused fd number accepts its connection.
#[test]
fn fd_reused_after_its_socket_outlived_the_run_gets_events() {
    let _serial = one_at_a_time();
    let mut kernel = Kernel::new().unwrap();

    // Run 1: a listener traps (its fd is registered) and is handed out.
    let first = kernel
        .run(async {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            {
                let mut accept = pin!(listener.accept());
                assert!(futures::poll!(accept.as_mut()).is_pending());
                // The kernel parks the accept when this poll ends: the fd is
                // registered. The accept is dropped after, the fd stays registered.
                yield_now().await.unwrap();
            }
            listener
        })
        .unwrap();
    let stats = kernel.stats();
    assert_eq!(
        (stats.registrations, stats.released_at_exit),
        (0, 1),
        "{stats:?}"
    );
    let reused_fd = first.as_raw_fd();
    drop(first); // outside the kernel: nothing to release, the fd closes

    // Run 2: a new listener on the same fd number accepts a connection.
    let (peer, client_addr) = kernel
        .run(async move {
            // The lowest free fd is the one just closed; keep trying a few
            // times in case something else took it first.
            let mut others = Vec::new();
            let listener = loop {
                let l = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
                if l.as_raw_fd() == reused_fd {
                    break l;
                }
                assert!(others.len() < 16, "fd {reused_fd} was not reused");
                others.push(l);
            };
            drop(others);
            let addr = listener.local_addr().unwrap();
            // The connector starts in the next pass: the accept below has
            // tried, seen WouldBlock and trapped by then.
            let connector = spawn(async move { TcpStream::connect(addr).await }).unwrap();
            // Hang guard. Not `timeout_after`: its expiry would make the
            // accept try again and find the connection, hiding the bug.
            // The guard is polled first, so it wins if it fires.
            let accepted =
                match futures::future::select(pin!(sleep(GUARD)), pin!(listener.accept())).await {
                    Either::Left(_) => {
                        panic!("accept on the reused fd number never saw its connection")
                    }
                    Either::Right((accepted, _)) => accepted,
                };
            let client = connector.join().await.unwrap().unwrap();
            let (_server, peer) = accepted.unwrap();
            (peer, client.local_addr().unwrap())
        })
        .unwrap();
    assert_eq!(peer, client_addr);
    assert_clean(&kernel.stats());
}

/// (t4) A leaf that waits on a bogus fd number.
///
/// Used to go wrong: `ReadWait { fd: i32::MAX }` made the kernel grow its fd
/// table to `i32::MAX + 1` entries before asking epoll, which then refused the
/// fd: tens of gigabytes requested for nothing, an abort on most machines.
/// Must hold now: the kernel registers first and grows its table only for an
/// fd epoll accepted; the leaf gets `TrapError::Os(9)` (EBADF) at its next
/// trap, a negative fd gets the same, and the kernel goes on serving real fds.
#[test]
fn bogus_fd_is_refused_with_ebadf_before_the_table_grows() {
    let _serial = one_at_a_time();
    /// Traps `ReadWait { fd }` until the kernel answers, then reports the answer.
    async fn wait_readable(fd: i32) -> Result<(), TrapError> {
        let mut leaf = Leaf::new();
        poll_fn(|cx| match leaf.trap(cx, Trap::ReadWait { fd }) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        })
        .await
    }

    let (huge, negative, echoed) = run_clean(async {
        let huge = timeout_after(GUARD, wait_readable(i32::MAX)).await;
        let negative = timeout_after(GUARD, wait_readable(-1)).await;
        // Real fds still work afterwards.
        let (client, server) = tcp_pair().await.unwrap();
        let mut buf = [0; 4];
        let (read, wrote) = futures::join!(server.read_exact(&mut buf), async {
            yield_now().await.unwrap(); // the read has trapped (and registered)
            client.write_all(b"ping").await
        });
        read.unwrap();
        wrote.unwrap();
        (huge, negative, buf)
    });
    assert_eq!(huge, Ok(Err(TrapError::Os(9))));
    assert_eq!(negative, Ok(Err(TrapError::Os(9))));
    assert_eq!(&echoed, b"ping");
}

/// (t5) A shutdown grace of `Duration::MAX`.
///
/// Used to go wrong: `Builder::shutdown_grace(Duration::MAX)` made shutdown
/// compute `Instant::now() + grace`, which overflowed and panicked at the end
/// of every run, even `run(async { 1 })`. Must hold now: a grace too long to
/// represent means "wait for every task": runs return their output, and a
/// task still alive when main ends is cancelled and allowed to finish its
/// cleanup (more awaits) however long it takes, leaving the kernel empty.
#[test]
fn shutdown_grace_max_waits_for_every_task() {
    let _serial = one_at_a_time();
    let (done, results) = mpsc::channel();
    // The kernel runs on its own thread so that a hang fails the test.
    let runner = thread::spawn(move || {
        let mut kernel = Builder::new()
            .shutdown_grace(Duration::MAX)
            .build()
            .unwrap();
        let trivial = kernel.run(async { 1 }).unwrap();
        let log = log();
        let main = kernel
            .run({
                let log = log.clone();
                async move {
                    spawn(async move {
                        match sleep(HOUR).await {
                            Err(TrapError::Cancelled) => push(&log, "cancelled"),
                            other => push(&log, format!("sleep ended: {other:?}")),
                        }
                        for _ in 0..3 {
                            if let Err(e) = trapline::shield(sleep(ms(2))).await {
                                push(&log, format!("cleanup interrupted: {e}"));
                            }
                        }
                        push(&log, "cleaned up");
                    })
                    .unwrap();
                    yield_now().await.unwrap(); // the task parks in its sleep
                    "main done"
                }
            })
            .unwrap();
        let stats = kernel.stats();

        let mut longest = Builder::new()
            .shutdown_grace(Duration::from_secs(u64::MAX))
            .build()
            .unwrap();
        let also = longest.run(async { 2 }).unwrap();
        done.send((trivial, main, entries(&log), stats, also))
            .unwrap();
    });
    let (trivial, main, log, stats, also) = match results.recv_timeout(Duration::from_secs(5)) {
        Ok(results) => results,
        Err(RecvTimeoutError::Disconnected) => match runner.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the runner sends before it ends"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("shutdown with a grace of Duration::MAX hung"),
    };
    assert_eq!((trivial, main, also), (1, "main done", 2));
    assert_eq!(log, ["cancelled", "cleaned up"]);
    assert_clean(&stats);
}

/// (t6) A leaf polled in one task, then moved into another.
///
/// Used to go wrong: a read polled once in task A (so A held the fd's reader
/// seat under the leaf's ticket) and then moved into task B kept A's park.
/// When B polled it, the leaf posted as a new leaf of B and was refused the
/// seat: `ResourceBusy`, against itself. Must hold now: a leaf that posts from
/// another task first undoes its old park, so B takes the seat and the read
/// gets the bytes written afterwards; nothing is left parked in A.
#[test]
fn leaf_moved_to_another_task_releases_its_old_park() {
    let _serial = one_at_a_time();
    let read = run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let server = Rc::new(server);
        let mut read = Box::pin({
            let server = server.clone();
            async move {
                let mut buf = [0; 4];
                let n = server.read(&mut buf).await?;
                Ok::<_, io::Error>(buf[..n].to_vec())
            }
        });
        // Polled once here: WouldBlock, so the main task takes the reader seat.
        assert!(futures::poll!(read.as_mut()).is_pending());
        // Handed, half-polled, to another task.
        let reader = spawn(read).unwrap();
        // The reader polls the read and traps; then it is polled again, as
        // it would be after a refusal, before any byte is there to read.
        for _ in 0..3 {
            yield_now().await.unwrap();
        }
        client.write_all(b"ping").await.unwrap();
        let read = timeout_after(GUARD, reader.join()).await;
        drop(server);
        read.map(|joined| joined.map(|r| r.map_err(|e| e.to_string())))
    });
    assert_eq!(read, Ok(Ok(Ok(b"ping".to_vec()))));
}

/// (t7) A leaf polled on one thread's kernel, then moved to another thread's kernel.
///
/// Used to go wrong: sequence numbers restarted at 1 on every thread, and a
/// fresh kernel's main task is always `TaskId(1@0)`. A sleep polled once in
/// kernel 1 and moved to kernel 2 carried the ticket `(1@0, seq 1)`, the same
/// ticket kernel 2 gave its own first sleep, so its post *replaced* that
/// sleep's park: the 20 ms sleep was never woken. Must hold now: task serials
/// are unique in the process and sequence numbers carry a per-thread prefix,
/// so the two tickets differ, the moved
/// leaf gets a fresh ticket in its new kernel, and the own sleep wins a biased
/// select against the hour-long moved one.
#[test]
fn leaf_moved_across_kernels_never_shares_a_ticket() {
    let _serial = one_at_a_time();
    // Kernel 1 (thread 1): poll an hour-long nap once, hand it out.
    let moved = thread::spawn(|| {
        trapline::run(async {
            let mut nap = Box::pin(Nap::new(Instant::now() + HOUR));
            assert!(futures::poll!(nap.as_mut()).is_pending());
            (nap, current().unwrap())
        })
        .unwrap()
    })
    .join()
    .unwrap();
    // Kernel 2 (thread 2): its main task has the same id; its own nap traps first.
    let (winner, (main1, main2), own, moved) = thread::spawn(move || {
        let (mut moved, main1) = moved;
        let (winner, main2, own) = trapline::run(async {
            let main2 = current().unwrap();
            let mut own = Box::pin(Nap::new(Instant::now() + ms(20)));
            // Hang guard. Not `timeout_after`: its expiry would poll `own`
            // again, past its deadline, and hide the bug. The guard traps
            // last on the first poll (so `own` is this thread's first leaf to
            // trap, as in the reproduction) and is looked at first after.
            let mut guard = Box::pin(sleep(GUARD));
            let mut guard_polled = false;
            let winner = poll_fn(|cx| {
                if guard_polled && guard.as_mut().poll(cx).is_ready() {
                    return Poll::Ready("hang guard");
                }
                if own.as_mut().poll(cx).is_ready() {
                    return Poll::Ready("own 20 ms nap");
                }
                if moved.as_mut().poll(cx).is_ready() {
                    return Poll::Ready("moved hour-long nap");
                }
                if !guard_polled {
                    guard_polled = true;
                    assert!(guard.as_mut().poll(cx).is_pending());
                }
                Poll::Pending
            })
            .await;
            (winner, main2, own.tickets.clone())
        })
        .unwrap();
        (winner, (main1, main2), own, moved.tickets.clone())
    })
    .join()
    .unwrap();
    assert_eq!(winner, "own 20 ms nap");
    // Task ids are unique across kernels now as well: the two main tasks
    // differ. Tickets name slots (both main tasks live in slot 0) and differ
    // by their sequence numbers.
    assert_ne!(main1, main2);
    let mine = own[0];
    assert!(own.iter().all(|t| *t == mine), "{own:?}");
    assert_eq!(moved.len(), 2, "{moved:?}");
    let (in_kernel1, in_kernel2) = (moved[0], moved[1]);
    assert_eq!(
        (in_kernel1.slot(), in_kernel2.slot(), mine.slot()),
        (main1.index(), main2.index(), main2.index())
    );
    assert_ne!(
        in_kernel1.seq(),
        mine.seq(),
        "tickets collide across threads"
    );
    assert_ne!(in_kernel2.seq(), mine.seq());
    assert_ne!(
        in_kernel2.seq(),
        in_kernel1.seq(),
        "a moved leaf gets a fresh ticket"
    );
}

/// (t8) A waiter in a wait queue whose task gets a sibling timeout.
///
/// Used to go wrong: task A waited in a `SchedWait` queue ahead of task B,
/// beside a `timeout_after` in a `join!`. When that timeout expired, the
/// interrupt undid every park of A, including its place in the queue, and A
/// re-queued behind B: the first `sched_wake(q, 1)` woke B. Must hold now: the
/// interrupt only resumes A's parks, A's wait re-traps under the same ticket
/// and keeps its place, so the wakes go A then B, in FIFO order.
#[test]
fn interrupt_keeps_sibling_fifo_place() {
    let _serial = one_at_a_time();
    let log = run_virtual_clean({
        let log = log();
        async move {
            let q = QueueId::new();
            let permits = Rc::new(Cell::new(0));
            let (go, start) = oneshot::channel::<()>();
            let (expired, sibling_done) = oneshot::channel::<()>();
            let a = spawn({
                let (log, permits) = (log.clone(), permits.clone());
                async move {
                    futures::join!(
                        async {
                            let got = acquire(q, permits).await;
                            push(&log, format!("A acquired: {got:?}"));
                        },
                        async {
                            start.await.unwrap();
                            let r = timeout_after(ms(1), sleep(HOUR)).await;
                            push(&log, format!("A's sibling timed out: {}", r.is_err()));
                            expired.send(()).unwrap();
                        }
                    );
                }
            })
            .unwrap();
            let b = spawn({
                let (log, permits) = (log.clone(), permits.clone());
                async move {
                    let got = acquire(q, permits).await;
                    push(&log, format!("B acquired: {got:?}"));
                }
            })
            .unwrap();
            yield_now().await.unwrap(); // A, then B, wait in the queue
            go.send(()).unwrap();
            timeout_after(GUARD, sibling_done)
                .await
                .expect("A's sibling timeout never fired")
                .unwrap();

            permits.set(1);
            assert_eq!(sched_wake(q, 1), Ok(1));
            yield_now().await.unwrap(); // the woken waiter runs
            push(&log, "-- first wake served --");

            permits.set(1);
            assert_eq!(sched_wake(q, 1), Ok(1));
            let joined = timeout_after(GUARD, async {
                a.join().await.unwrap();
                b.join().await.unwrap();
            })
            .await;
            assert_eq!(joined, Ok(()));
            entries(&log)
        }
    });
    assert_eq!(
        log,
        [
            "A's sibling timed out: true",
            "A acquired: Ok(())",
            "-- first wake served --",
            "B acquired: Ok(())",
        ]
    );
}

/// A foreign waker whose `Drop` re-enters the kernel, as a socket's `Drop`
/// does: it releases an fd (`IoRelease`) and records how the kernel answered.
struct SocketOwningWaker {
    name: &'static str,
    socket: std::net::TcpListener,
    drops: Arc<Mutex<Vec<String>>>,
}

impl SocketOwningWaker {
    fn waker(name: &'static str, drops: &Arc<Mutex<Vec<String>>>) -> std::task::Waker {
        let socket = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        waker(Arc::new(SocketOwningWaker {
            name,
            socket,
            drops: drops.clone(),
        }))
    }
}

impl ArcWake for SocketOwningWaker {
    fn wake_by_ref(_: &Arc<Self>) {}
}

impl Drop for SocketOwningWaker {
    fn drop(&mut self) {
        let released = traps::io_release(self.socket.as_raw_fd());
        self.drops
            .lock()
            .unwrap()
            .push(format!("{} dropped: {released:?}", self.name));
    }
}

fn drops(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// (t9) A foreign waker whose `Drop` re-enters the kernel.
///
/// Used to go wrong: when a park held the last clone of a foreign waker, the
/// kernel dropped that waker while its state's `RefCell` was borrowed (a leaf
/// dropped and its park undone, a park's waker replaced by a new one, a task
/// dropped at shutdown). A waker that owns a socket runs `IoRelease` in its
/// `Drop`, which borrows the state again: `already borrowed` panic. Must hold
/// now: the kernel drops such wakers only after the borrow ends, so each one
/// is dropped exactly when its park goes, and its `IoRelease` gets `Ok(())`.
#[test]
fn waker_dropped_outside_kernel_borrow() {
    let _serial = one_at_a_time();
    let log = Arc::new(Mutex::new(Vec::new()));

    // A leaf parked under a foreign waker that only its park still owns.
    let seen = run_clean({
        let log = log.clone();
        async move {
            let mut seen = Vec::new();
            let mut nap = Box::pin(sleep(HOUR));
            let polled_under = |nap: &mut Pin<Box<trapline::Sleep>>, name: &'static str| {
                let w = SocketOwningWaker::waker(name, &log);
                assert!(nap.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
            };
            polled_under(&mut nap, "first");
            yield_now().await.unwrap(); // parked: the park owns "first"
            seen.push(drops(&log));

            // Polled again under another waker: the park swaps wakers and
            // the old one goes.
            polled_under(&mut nap, "second");
            yield_now().await.unwrap();
            seen.push(drops(&log));

            // The leaf is dropped: its park is undone and its waker goes.
            drop(nap);
            seen.push(drops(&log));
            seen
        }
    });
    assert_eq!(
        seen,
        [
            vec![],
            vec!["first dropped: Ok(())".to_string()],
            vec![
                "first dropped: Ok(())".to_string(),
                "second dropped: Ok(())".to_string()
            ],
        ]
    );

    // A task dropped at shutdown (zero grace) while parked under such a waker.
    log.lock().unwrap().clear();
    let ((), stats) = run_with_grace(Duration::ZERO, {
        let log = log.clone();
        async move {
            spawn(async move {
                let mut nap = pin!(sleep(HOUR));
                poll_fn(|_| {
                    let w = SocketOwningWaker::waker("at shutdown", &log);
                    assert!(nap.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
                    Poll::Ready(())
                })
                .await;
                futures::future::pending::<()>().await;
            })
            .unwrap();
            yield_now().await.unwrap(); // the task has parked
        }
    });
    assert_clean(&stats);
    assert_eq!(drops(&log), ["at shutdown dropped: Ok(())"]);
}

/// Used to go wrong: task and timeout serials restarted at 1 in every kernel,
/// so an id kept from an earlier kernel on the same thread named a live task
/// of the next one: cancelling it cancelled a stranger. Must hold now: ids are
/// unique in the process, and the stale id cancels nobody.
#[test]
fn stale_task_id_from_an_earlier_kernel_cancels_nobody() {
    let _serial = one_at_a_time();
    let old = trapline::run(async {
        spawn(async {}).unwrap().id() // a task of kernel 1
    })
    .unwrap();
    let out = run_clean(async move {
        let bystander = spawn(sleep(ms(5))).unwrap();
        yield_now().await.unwrap();
        assert_eq!(traps::cancel(old), Ok(false), "names nobody here");
        bystander.join().await
    });
    assert_eq!(out, Ok(Ok(())));
}

/// Used to go wrong: a `timeout_after` block that outlived its run left its
/// timeout in the kernel, and dropping it later inside another kernel unset
/// *that* kernel's timeout of the same id, so its limit never fired. Must
/// hold now: the first kernel releases the timeout when its run ends (and
/// counts it), and the late drop touches nothing else.
#[test]
fn timeout_outliving_its_run_is_released_and_touches_no_other_kernel() {
    let _serial = one_at_a_time();
    let mut first = Kernel::new().unwrap();
    let escaped = first
        .run(async {
            let mut block = Box::pin(timeout_after(HOUR, sleep(HOUR)));
            assert!(futures::poll!(block.as_mut()).is_pending());
            // Handed out of the run unfinished (boxed, so not awaited here).
            Some(block)
        })
        .unwrap();
    let stats = first.stats();
    assert_eq!((stats.timeouts, stats.timers), (0, 0));
    assert_eq!(stats.released_at_exit, 1, "the escaped timeout, released");
    let out = run_clean(async move {
        timeout_after(ms(10), async move {
            drop(escaped);
            sleep(HOUR).await
        })
        .await
    });
    assert!(matches!(out, Err(TrapError::TimedOut(_))), "{out:?}");
}

/// Used to go wrong: a foreign waker that panics when woken unwound out of
/// `run`, skipping shutdown and losing the other wakes of its batch. Must
/// hold now: the panic is contained and logged, the kernel runs on, and the
/// run ends clean.
#[test]
fn panicking_foreign_waker_is_contained() {
    let _serial = one_at_a_time();
    struct Panics;
    impl ArcWake for Panics {
        fn wake_by_ref(_: &Arc<Self>) {
            panic!("a waker that panics");
        }
    }
    let out = run_clean(async {
        let w = waker(Arc::new(Panics));
        let mut cx = Context::from_waker(&w);
        let mut nap = Box::pin(sleep(ms(2)));
        assert!(nap.as_mut().poll(&mut cx).is_pending());
        // The sleep fires and the kernel wakes `w`, which panics.
        sleep(ms(10)).await.unwrap();
        drop(nap);
        "ran on"
    });
    assert_eq!(out, "ran on");
}

/// A connected UDP socket whose peer is gone gets one `ECONNREFUSED`
/// (`EPOLLERR`); the error is not sticky, so a later receive parks until its
/// limit instead of being resumed over and over (a busy loop). Counted in
/// polls, not time.
#[test]
fn udp_socket_error_does_not_make_later_reads_spin() {
    let (out, stats) = util::run_with_stats(async {
        let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        let socket = trapline::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.connect(gone_addr).unwrap();
        let mut buf = [0u8; 16];
        // Wait once, so the fd is registered before the error arrives.
        let first = timeout_after(Duration::from_millis(20), socket.recv(&mut buf)).await;
        assert!(matches!(first, Err(TrapError::TimedOut(_))), "{first:?}");
        socket.send(b"x").await.unwrap();
        let refused = socket.recv(&mut buf).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        timeout_after(Duration::from_millis(100), socket.recv(&mut buf)).await
    });
    assert!(matches!(out, Err(TrapError::TimedOut(_))), "{out:?}");
    assert!(stats.polls < 50, "the read spun: {} polls", stats.polls);
}
