//! Faults inside the kernel: a storm of cancellations over every kind of
//! trap, a task that never traps while others wait, and an fd number reused
//! while a task was parked on it.
//!
//! The storm counts this process's open fds (`/proc/self/fd`), so every
//! test here takes a lock: none opens sockets while another counts. It
//! needs some 1,700 fds at once, so it raises the soft `RLIMIT_NOFILE` if
//! it is lower (and is skipped, saying so on stderr, if the hard limit is).

mod util;

use std::future::Future;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use trapline::net::{TcpListener, TcpStream};
use trapline::traps::{Leaf, QueueId, Trap};
use trapline::{sleep, spawn, timeout_after, yield_now, JoinError, TrapError};
use util::fds::{allow_fds, open_fds};
use util::{
    assert_clean, entries, log, one_at_a_time, push, run_clean, run_virtual_clean, run_with_stats,
    tcp_pair,
};

const HOUR: Duration = Duration::from_secs(3600);

/// Waits in a wait queue nobody wakes: a `SchedWait` leaf.
struct QueueWait {
    queue: QueueId,
    leaf: Leaf,
}

impl Future for QueueWait {
    type Output = Result<(), TrapError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let queue = self.queue;
        match self.leaf.trap(cx, Trap::SchedWait { queue }) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// Makes a socket's buffers tiny, so a writer fills them with a few KB.
fn small_buffers(stream: &TcpStream) {
    // SAFETY: the fd belongs to `stream`, which outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let sock = socket2::SockRef::from(&fd);
    sock.set_send_buffer_size(4096).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
}

/// How the storm's tasks wait, and how many of each.
const KINDS: [(&str, usize); 8] = [
    ("sleep", 2000),
    ("timeout", 2000),
    ("join", 1500),
    ("queue", 1500),
    ("foreign", 1500),
    ("read", 1000),
    ("write", 200),
    ("accept", 300),
];

/// 10,000 tasks parked on every kind of trap — sleep, a timeout around a
/// sleep, join, a wait queue, a foreign future inside `timeout_after`, read,
/// write, accept — are all cancelled in one poll. Every one ends with
/// `Cancelled`; afterwards the kernel holds no task, park, registration,
/// timer or timeout, and the process has exactly the fds it had before.
#[test]
fn cancellation_storm_leaves_nothing_behind() {
    let _serial = one_at_a_time();
    let fds_before = open_fds();
    // Sockets held at once: 1,000 readers' ends, 200 writer pairs, 300
    // listeners; and room for the kernel and the harness.
    let need = fds_before as u64 + 1_000 + 400 + 300 + 512;
    if let Err(why) = allow_fds(need) {
        eprintln!("cancellation_storm_leaves_nothing_behind skipped: {why}");
        return;
    }
    let (ended, stats) = run_with_stats(async {
        let mut tasks = Vec::new();
        let mut senders = Vec::new();
        let mut keep = Vec::new();
        // What the joiners wait for: a task that outlives the storm.
        let target = Rc::new(
            spawn(QueueWait {
                queue: QueueId::new(),
                leaf: Leaf::new(),
            })
            .unwrap(),
        );
        let zeros = Rc::new(vec![0u8; 1 << 20]);
        for (kind, n) in KINDS {
            for i in 0..n {
                let task = match kind {
                    "sleep" => spawn(async { sleep(HOUR).await.map_err(|e| e.to_string()) }),
                    "timeout" => spawn(async {
                        match timeout_after(HOUR, sleep(HOUR)).await {
                            Ok(r) => r.map_err(|e| e.to_string()),
                            Err(e) => Err(format!("outer {e}")),
                        }
                    }),
                    "join" => {
                        let target = target.clone();
                        spawn(async move {
                            match target.join().await {
                                Err(JoinError::Interrupted(e)) => Err(e.to_string()),
                                other => Err(format!("unexpected {other:?}")),
                            }
                        })
                    }
                    "queue" => spawn(async {
                        let wait = QueueWait {
                            queue: QueueId::new(),
                            leaf: Leaf::new(),
                        };
                        wait.await.map_err(|e| e.to_string())
                    }),
                    "foreign" => {
                        let (tx, rx) = oneshot::channel::<()>();
                        senders.push(tx);
                        spawn(async move {
                            match timeout_after(HOUR, rx).await {
                                Ok(_) => Err("the oneshot ended".to_string()),
                                Err(e) => Err(e.to_string()),
                            }
                        })
                    }
                    "read" if i % 2 == 0 => {
                        let (a, b) = tcp_pair().await.unwrap();
                        let (a, b) = (Rc::new(a), Rc::new(b));
                        // Main keeps both ends open: a reader whose peer closed
                        // would read end-of-file, not wait.
                        keep.push((a.clone(), b.clone()));
                        for s in [a, b] {
                            tasks.push((
                                kind,
                                spawn(async move {
                                    let mut buf = [0; 16];
                                    s.read(&mut buf).await.map(drop).map_err(|e| e.to_string())
                                })
                                .unwrap(),
                            ));
                        }
                        continue;
                    }
                    "read" => continue,
                    "write" => {
                        let (a, b) = tcp_pair().await.unwrap();
                        small_buffers(&a);
                        small_buffers(&b);
                        let zeros = zeros.clone();
                        spawn(async move {
                            let _peer = b; // open, never read
                            a.write_all(&zeros).await.map_err(|e| e.to_string())
                        })
                    }
                    "accept" => {
                        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
                        spawn(async move {
                            listener.accept().await.map(drop).map_err(|e| e.to_string())
                        })
                    }
                    _ => unreachable!(),
                };
                tasks.push((kind, task.unwrap()));
            }
        }
        // Let every task reach its trap.
        for _ in 0..3 {
            yield_now().await.unwrap();
        }
        let before = tasks.len();
        let ids: Vec<_> = tasks.iter().map(|(_, t)| t.id()).collect();
        let mut cancelled = 0;
        for id in ids {
            cancelled += usize::from(trapline::traps::cancel(id).unwrap());
        }
        let mut ended = std::collections::BTreeMap::<String, usize>::new();
        for (kind, t) in tasks {
            let r = t.join().await.unwrap();
            *ended.entry(format!("{kind}: {r:?}")).or_default() += 1;
        }
        drop(senders);
        drop(keep);
        assert!(
            !target.is_finished(),
            "the joiners' target was not cancelled"
        );
        assert!(target.cancel().await.unwrap().is_err());
        (before, cancelled, ended)
    });
    let (count, cancelled, ended) = ended;
    assert_eq!((count, cancelled), (10_000, 10_000));
    let how = Err::<(), _>(TrapError::Cancelled.to_string());
    let expected: std::collections::BTreeMap<String, usize> = KINDS
        .iter()
        .map(|(kind, n)| (format!("{kind}: {how:?}"), *n))
        .collect();
    assert_eq!(ended, expected);
    assert_clean(&stats);
    assert_eq!(open_fds(), fds_before, "no fd left open");
}

/// A task that never traps holds the kernel: it cannot be interrupted while
/// it computes, and tasks due meanwhile wait for it. A cancel sent before it
/// starts computing is delivered at its next blocking trap: the sleep that
/// can already complete does, the computation runs to its end, and the next
/// wait fails with `Cancelled`. On the virtual clock, so the order is exact.
#[test]
fn task_that_never_traps_takes_its_cancel_at_its_next_trap() {
    let _serial = one_at_a_time();
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let minute = Duration::from_secs(60);
            let spinner = spawn({
                let log = log.clone();
                async move {
                    let slept = sleep(minute).await;
                    push(&log, format!("spinner: slept {slept:?}"));
                    // Computes without a single trap.
                    let mut x = 0u64;
                    for i in 0..2_000_000u64 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                    }
                    push(&log, "spinner: computed");
                    let next = sleep(HOUR).await;
                    push(&log, format!("spinner: then {next:?}"));
                    x
                }
            })
            .unwrap();
            let waiter = spawn({
                let log = log.clone();
                async move {
                    sleep(minute).await.unwrap();
                    push(&log, "waiter: woke");
                }
            })
            .unwrap();
            // Due at the same minute, set first: main runs first in that
            // pass, with the spinner ready but not yet run.
            sleep(minute).await.unwrap();
            assert_eq!(trapline::traps::cancel(spinner.id()), Ok(true));
            push(&log, "main: cancelled the spinner");
            spinner.join().await.unwrap();
            waiter.join().await.unwrap();
        }
    });
    assert_eq!(
        entries(&log),
        [
            "main: cancelled the spinner",
            "spinner: slept Ok(())",
            "spinner: computed",
            "spinner: then Err(Cancelled)",
            "waiter: woke",
        ]
    );
}

/// An fd number reused while a task was parked on it: task A waits to read
/// fd N and is cancelled, which closes N; a new socket gets the number N and
/// task B waits to read it. The old socket's peer then writes and closes. B
/// is never resumed by anything of the old socket (it is polled once, then
/// once more for its own bytes) and reads exactly what its own peer sent.
///
/// Discussion: a copy (`dup`) of the old socket is kept open throughout, so
/// its file description lives on: an epoll registration of it that the
/// kernel failed to remove before closing N would still report the old
/// peer's bytes, under the token B now waits on. Without the copy, closing
/// N would remove such a registration by itself and the test could not
/// fail that way.
#[test]
fn reused_fd_number_never_resumes_the_wrong_waiter() {
    let _serial = one_at_a_time();
    let polls = Rc::new(std::cell::Cell::new(0));
    let got = run_clean(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (old, old_peer) = tcp_pair().await.unwrap();
        let n = old.as_raw_fd();
        let a = spawn(async move {
            let mut buf = [0; 8];
            old.read(&mut buf).await
        })
        .unwrap();
        yield_now().await.unwrap(); // A parks on fd N
                                    // Take every free number below N, so that N is the lowest once closed.
        let mut holes = Vec::new();
        loop {
            let f = std::fs::File::open("/dev/null").unwrap();
            if f.as_raw_fd() > n {
                break;
            }
            holes.push(f);
        }
        // SAFETY: fd N is open (A's socket) for the length of this borrow.
        let old_copy = unsafe { BorrowedFd::borrow_raw(n) }
            .try_clone_to_owned()
            .unwrap();
        assert!(old_copy.as_raw_fd() > n);
        assert!(a.cancel().await.unwrap().is_err(), "A was cancelled");
        // fd N is closed now; the next socket takes the lowest free number.
        let new = TcpStream::connect(addr).await.unwrap();
        assert_eq!(new.as_raw_fd(), n, "the number was reused");
        drop(holes);
        let (new_peer, _) = listener.accept().await.unwrap();
        let b = spawn(util::Counted::new(polls.clone(), async move {
            let mut buf = [0; 8];
            let k = new.read(&mut buf).await.unwrap();
            buf[..k].to_vec()
        }))
        .unwrap();
        yield_now().await.unwrap(); // B parks on fd N
        old_peer.write_all(b"old").await.unwrap();
        drop(old_peer);
        for _ in 0..10 {
            sleep(Duration::from_millis(1)).await.unwrap();
        }
        assert!(!b.is_finished());
        assert_eq!(polls.get(), 1, "B was not resumed by the old socket");
        new_peer.write_all(b"new").await.unwrap();
        let got = b.join().await.unwrap();
        drop(old_copy);
        got
    });
    assert_eq!(got, b"new");
    assert_eq!(polls.get(), 2);
}
