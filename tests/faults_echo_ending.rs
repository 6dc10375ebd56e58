//! How the echo service ends: cancelled, timed out, on a listener that
//! fails for good, or dropped with its kernel — and that it takes its
//! connections with it every time.
//!
//! The service owns its connection tasks: whatever ends it, no connection
//! task, fd or timer is left behind, and its count of active connections is
//! back to zero. Failed accepts that end the service are not counted as
//! accept errors it survived.

mod util;

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use trapline::echo::{serve, serve_until, EchoConfig, EchoStats};
use trapline::net::{TcpListener, TcpStream};
use trapline::{sleep, spawn, timeout_after, TrapError};
use util::{assert_clean, run_clean, run_with_grace};

/// A listener on a free loopback port, and its address.
fn listener() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Waits (bounded: 10 s) until the service serves `n` connections.
async fn until_active(stats: &EchoStats, n: usize) {
    for _ in 0..10_000 {
        if stats.active() == n {
            return;
        }
        sleep(Duration::from_millis(1)).await.unwrap();
    }
    panic!("the service never had {n} active connections: {stats:?}");
}

/// Cancelling the service while a silent client is connected ends that
/// client's connection too, before the cancel returns: no connection is
/// active, the client reads end-of-file, the connection counts neither as
/// failed nor idle, and the kernel is empty afterwards.
#[test]
fn cancelling_the_service_ends_its_connections() {
    let stats = Rc::new(EchoStats::default());
    let (ended, active, eof) = run_clean({
        let stats = stats.clone();
        async move {
            let (listener, addr) = listener();
            let service = spawn(serve(listener, EchoConfig::default(), stats.clone())).unwrap();
            let silent = TcpStream::connect(addr).await.unwrap();
            until_active(&stats, 1).await;
            let ended = service.cancel().await.unwrap();
            let active = stats.active();
            let mut buf = [0; 8];
            let eof = silent.read(&mut buf).await.unwrap();
            (
                ended.map_err(|e| TrapError::from_io(&e).cloned()),
                active,
                eof,
            )
        }
    });
    assert_eq!(ended, Err(Some(TrapError::Cancelled)));
    assert_eq!(active, 0, "the connection ended with the service");
    assert_eq!(eof, 0, "the silent client sees end-of-file");
    assert_eq!(
        (stats.accepted(), stats.failed(), stats.idle_closed()),
        (1, 0, 0)
    );
}

/// A timeout around the service ends it with that timeout, at once: not
/// a failed accept to back off from, and its connections end with it.
#[test]
fn a_timeout_around_the_service_ends_it() {
    let stats = Rc::new(EchoStats::default());
    let (ended, active) = run_clean({
        let stats = stats.clone();
        async move {
            let (listener, addr) = listener();
            let client = spawn(async move {
                let silent = TcpStream::connect(addr).await.unwrap();
                let mut buf = [0; 8];
                silent.read(&mut buf).await.unwrap()
            })
            .unwrap();
            let limited = timeout_after(
                Duration::from_millis(200),
                serve(listener, EchoConfig::default(), stats.clone()),
            )
            .await;
            let ended = match limited {
                Ok(served) => served.map_err(|e| TrapError::from_io(&e).cloned()),
                Err(e) => Err(Some(e)),
            };
            assert_eq!(client.join().await.unwrap(), 0, "end-of-file");
            (ended, stats.active())
        }
    });
    assert!(
        matches!(ended, Err(Some(TrapError::TimedOut(_)))),
        "{ended:?}"
    );
    assert_eq!(active, 0);
    assert_eq!((stats.accepted(), stats.accept_errors()), (1, 0));
}

/// A listener that cannot accept any more (shut down: accept fails with
/// `EINVAL`) ends the service with that error at once, instead of retrying
/// it forever; it is not counted as an accept error survived. (Bounded by
/// a 10 s limit, so a service that retries fails the test instead of hanging
/// it.)
#[test]
fn a_listener_that_fails_for_good_ends_the_service() {
    let stats = Rc::new(EchoStats::default());
    let ended = run_clean({
        let stats = stats.clone();
        async move {
            let (listener, _) = listener();
            // SAFETY: the fd is the listener's, open for this whole call.
            let rc = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
            assert_eq!(rc, 0, "shutdown of a listening socket");
            timeout_after(
                Duration::from_secs(10),
                serve(listener, EchoConfig::default(), stats),
            )
            .await
            .expect("the service ended by itself")
        }
    });
    let e = ended.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    assert_eq!(stats.accept_errors(), 0);
}

/// A service dropped with its kernel (no shutdown grace: nothing is polled
/// again) leaves its count of active connections at zero: the count is a
/// guard inside each connection's task, released when the task is dropped.
#[test]
fn connections_dropped_unfinished_are_no_longer_counted() {
    let stats = Rc::new(EchoStats::default());
    let (silent, kernel) = run_with_grace(Duration::ZERO, {
        let stats = stats.clone();
        async move {
            let (listener, addr) = listener();
            spawn(serve(listener, EchoConfig::default(), stats.clone())).unwrap();
            let silent = TcpStream::connect(addr).await.unwrap();
            until_active(&stats, 1).await;
            silent.as_raw_fd()
        }
    });
    assert!(silent > 2);
    assert_clean(&kernel);
    assert_eq!((stats.accepted(), stats.active()), (1, 0));
}

/// `serve_until`: once `stop` resolves, the listener is closed (a new
/// client is refused) and the open connections are handed back: one that
/// closes by itself lets `finished` return; a silent one keeps it waiting
/// (an interrupted wait leaves it in place) until `cancel` ends it.
#[test]
fn serve_until_stops_accepting_and_hands_back_its_connections() {
    let stats = Rc::new(EchoStats::default());
    let (refused, waited, eof, echoed) = run_clean({
        let stats = stats.clone();
        async move {
            let (listener, addr) = listener();
            let talker = spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                s.write_all(b"bye").await.unwrap();
                let mut back = [0; 3];
                s.read_exact(&mut back).await.unwrap();
                back
            })
            .unwrap();
            let silent = TcpStream::connect(addr).await.unwrap();
            let stop = {
                let stats = stats.clone();
                async move {
                    // Bounded: 10 s.
                    for _ in 0..10_000 {
                        if stats.accepted() == 2 {
                            break;
                        }
                        sleep(Duration::from_millis(1)).await.unwrap();
                    }
                }
            };
            let ((), open) = serve_until(listener, EchoConfig::default(), stats.clone(), stop)
                .await
                .unwrap();
            let refused = TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(|e| e.kind());
            let echoed = talker.join().await.unwrap();
            // The talker's connection ends; the silent one does not.
            let waited = timeout_after(Duration::from_millis(200), open.finished()).await;
            let waited = (waited.is_err(), open.len());
            open.cancel().await;
            let mut buf = [0; 8];
            let eof = silent.read(&mut buf).await.unwrap();
            (refused, waited, eof, echoed)
        }
    });
    assert_eq!(refused, Err(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(waited, (true, 1), "the silent connection is still open");
    assert_eq!(eof, 0, "cancelled: the silent client sees end-of-file");
    assert_eq!(&echoed, b"bye");
    assert_eq!((stats.accepted(), stats.active()), (2, 0));
}

/// A limit of zero is refused at once with a clear error.
#[test]
fn zero_limits_are_refused() {
    let zeros = [
        EchoConfig {
            max_connections: 0,
            ..EchoConfig::default()
        },
        EchoConfig {
            idle_timeout: Duration::ZERO,
            ..EchoConfig::default()
        },
        EchoConfig {
            buffer: 0,
            ..EchoConfig::default()
        },
    ];
    let errors = run_clean(async move {
        let mut errors = Vec::new();
        for config in zeros {
            let (listener, _) = listener();
            let served = timeout_after(
                Duration::from_secs(10),
                serve(listener, config, Rc::default()),
            );
            let e = served.await.expect("refused at once").unwrap_err();
            errors.push((e.kind(), e.to_string()));
        }
        errors
    });
    let invalid = std::io::ErrorKind::InvalidInput;
    assert_eq!(
        errors,
        [
            (
                invalid,
                "echo: max_connections must be at least 1".to_string()
            ),
            (invalid, "echo: idle_timeout must be above zero".to_string()),
            (invalid, "echo: buffer must be at least 1 byte".to_string()),
        ]
    );
}
