//! One kernel per core: kernels on their own threads share a port through
//! `SO_REUSEPORT`, and reach each other through handles.

mod util;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Mutex;

use futures::channel::oneshot;
use socket2::{Domain, Protocol, Socket, Type};
use trapline::net::{TcpListener, TcpStream};
use trapline::{run_threads, Kernel, RemoteError};

thread_local! {
    /// Connections the kernel on this thread accepted.
    static ACCEPTED: Cell<usize> = const { Cell::new(0) };
}

/// A free loopback port, held by an unlistening `SO_REUSEPORT` socket so
/// the kernels' listeners can join it.
fn reserve_port() -> (Socket, SocketAddr) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

/// Two kernels, each with its own listener on one port: 64 connections
/// from one client spread over both (each kernel takes at least one), every
/// connection is answered by exactly one kernel, and each kernel's own count,
/// asked for through its handle, matches what the client saw.
#[test]
fn two_kernels_share_accepted_connections() {
    const CONNECTIONS: usize = 64;
    let (reserved, addr) = reserve_port();
    let stops: Mutex<Vec<Option<oneshot::Receiver<()>>>> = Mutex::new(Vec::new());
    let mut stop_senders = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = oneshot::channel();
        stop_senders.push(tx);
        stops.lock().unwrap().push(Some(rx));
    }
    let (handles_tx, handles_rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        // Bounded: if kernel 0 never sends (its bind failed), this thread
        // fails, which drops the stop senders and lets the kernels end.
        let handles: Vec<trapline::Handle> = handles_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("kernel 0 sends the handles once its listener is bound");
        let seen = trapline::run(async move {
            let mut seen = [0usize; 2];
            for _ in 0..CONNECTIONS {
                let stream = TcpStream::connect(addr).await?;
                let mut who = [0; 1];
                stream.read_exact(&mut who).await?;
                seen[usize::from(who[0])] += 1;
                // The kernel closes after one byte: end of stream follows.
                assert_eq!(stream.read(&mut who).await?, 0);
            }
            Ok::<_, std::io::Error>(seen)
        })
        .unwrap()
        .unwrap();
        let counts: Vec<usize> = handles
            .iter()
            .map(|h| {
                futures::executor::block_on(h.spawn(|| async { ACCEPTED.with(Cell::get) })).unwrap()
            })
            .collect();
        for tx in stop_senders {
            tx.send(()).unwrap();
        }
        (seen, counts)
    });

    let outputs = run_threads(2, |me| {
        let stop = stops.lock().unwrap()[me.index()].take().unwrap();
        let handles_tx = handles_tx.clone();
        async move {
            let listener = TcpListener::builder(addr)
                .reuse_port(true)
                .nodelay(true)
                .bind()?;
            if me.index() == 0 {
                handles_tx.send(me.handles().to_vec()).unwrap();
            }
            let serve = async {
                loop {
                    let (stream, _) = listener.accept().await?;
                    ACCEPTED.with(|a| a.set(a.get() + 1));
                    stream.write_all(&[me.index() as u8]).await?;
                }
            };
            futures::pin_mut!(serve);
            match futures::future::select(serve, stop).await {
                futures::future::Either::Left((err, _)) => err,
                futures::future::Either::Right(_) => Ok::<_, std::io::Error>(me.index()),
            }
        }
    })
    .unwrap();
    drop(reserved);
    let (seen, counts) = client.join().unwrap();
    assert_eq!(
        outputs.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(seen.iter().sum::<usize>(), CONNECTIONS);
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both kernels took connections: {seen:?}"
    );
    assert_eq!(counts, seen, "each kernel's own count matches");
}

/// A handle starts a `!Send` task on another kernel and gets its output;
/// a handle to a kernel that has ended gives `RemoteError`, never a hang.
#[test]
fn handles_spawn_across_kernels_and_fail_cleanly_after_the_end() {
    // The kernels end together: the one whose main future ends first still
    // serves the other's request.
    let outputs = run_threads(2, |me| async move {
        let other = me.handle(1 - me.index()).unwrap().clone();
        let from = me.index();
        other
            .spawn(move || async move {
                let here = std::rc::Rc::new(trapline::Handle::current().unwrap().id());
                (from, *here)
            })
            .await
    })
    .unwrap();
    let (a, b) = (outputs[0].clone().unwrap(), outputs[1].clone().unwrap());
    assert_eq!((a.0, b.0), (0, 1));
    assert_ne!(a.1, b.1, "each ran on the other kernel");

    let handle = Kernel::new().unwrap().handle();
    let join = handle.spawn(|| async { 1 });
    assert_eq!(futures::executor::block_on(join), Err(RemoteError::Ended));
}

/// `run_threads(0, ..)` is a clear error, not a hang.
#[test]
fn zero_threads_is_invalid_input() {
    let err = run_threads(0, |_| async {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// Runs `f` on its own thread and returns its outcome (`Err` holds a panic's
/// message); fails the test, rather than hanging it, if `f` has not ended
/// within a minute.
fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(outcome.map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        }));
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("run_threads ended instead of hanging")
}

/// A main future that panics ends its kernel and counts as ended: the other
/// kernel's main future (done first, waiting for its peers) is let go, every
/// thread ends, and the panic is raised again from `run_threads`.
#[test]
fn a_panicking_main_future_is_raised_again_not_a_hang() {
    let outcome = watchdog(|| {
        run_threads(2, |me| async move {
            if me.index() == 1 {
                // Let kernel 0 finish its main future first.
                trapline::yield_now().await.unwrap();
                panic!("main future 1 failed");
            }
            me.index()
        })
    });
    assert_eq!(outcome.unwrap_err(), "main future 1 failed");
}

/// A `builder` that panics on one thread: the other thread does not wait at
/// the start for ever, no main future runs, and the panic is raised again.
#[test]
fn a_panicking_builder_is_raised_again_and_no_main_future_runs() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RAN: AtomicUsize = AtomicUsize::new(0);
    let outcome = watchdog(|| {
        trapline::run_threads_with(
            |index| {
                if index == 1 {
                    panic!("no builder for kernel 1");
                }
                trapline::Builder::new()
            },
            2,
            |_| async {
                RAN.fetch_add(1, Ordering::SeqCst);
            },
        )
    });
    assert_eq!(outcome.unwrap_err(), "no builder for kernel 1");
    assert_eq!(RAN.load(Ordering::SeqCst), 0, "no main future ran");
}

/// A task awaiting a `RemoteJoin` waits at a `FutureWait` trap, so a cancel
/// reaches it: the join ends with `RemoteError::Interrupted(Cancelled)`,
/// nothing is left behind, and the remote task runs on unaffected.
#[test]
fn a_task_waiting_on_a_remote_join_can_be_cancelled() {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let worker = std::thread::spawn(move || {
        let mut kernel = Kernel::new().unwrap();
        handle_tx.send(kernel.handle()).unwrap();
        kernel.run(stop_rx).unwrap()
    });
    let handle = handle_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the worker kernel starts");
    let (release_tx, release_rx) = oneshot::channel::<u32>();
    let (done_tx, done_rx) = oneshot::channel::<u32>();
    let ended = util::run_clean(async move {
        let waiter = trapline::spawn(async move {
            handle
                .spawn(move || async move {
                    let n = release_rx.await.unwrap_or(0);
                    let _ = done_tx.send(n + 1);
                    n
                })
                .await
        })
        .unwrap();
        trapline::yield_now().await.unwrap(); // the waiter parks on its join
        waiter.cancel().await.unwrap()
    });
    assert_eq!(
        ended,
        Err(RemoteError::Interrupted(trapline::TrapError::Cancelled))
    );
    // The remote task was not cancelled: it still takes its input.
    release_tx.send(41).unwrap();
    assert_eq!(futures::executor::block_on(done_rx), Ok(42));
    stop_tx.send(()).unwrap();
    worker.join().unwrap().unwrap();
}

/// `echo_server --threads 3 --addr 127.0.0.1:0` (the example binary, built
/// by `cargo test` next to this test's; skipped with a message when it is
/// not there): the port is reserved once, so it prints one address, and
/// every connection to it is echoed byte-exact.
#[test]
fn echo_server_threads_with_port_zero_listen_on_one_port() {
    use std::io::{BufRead, Read, Write};
    let exe = std::env::current_exe().unwrap();
    let Some(server) = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("echo_server"))
        .filter(|p| p.exists())
    else {
        println!(
            "skipped: no echo_server example binary next to {}",
            exe.display()
        );
        return;
    };
    let mut child = std::process::Command::new(&server)
        .args(["--threads", "3", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("echo_server listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    assert_ne!(addr.port(), 0);
    for i in 0..12 {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let msg = format!("ping {i}");
        stream.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0; msg.len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "one address printed, not one per kernel");
}
