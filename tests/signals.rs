//! Signals as awaitables: the process raises SIGINT and SIGTERM at itself
//! and a task observes them; a wait for a signal is cancellable and
//! timeout-able; and echo_server shuts down gracefully on SIGTERM.
//!
//! Signals are process-wide, so the in-process cases run in one test.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream as StdStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use signal_hook::low_level::raise;
use trapline::signal::{Signals, SIGINT, SIGTERM};
use trapline::{spawn, timeout_after, yield_now, TrapError};
use util::run_clean;

/// SIGTERM and SIGINT raised by the process reach the task in the order
/// raised; an interrupted wait loses no signal; SIGKILL is refused.
#[test]
fn raised_signals_are_observed_and_waits_are_interruptible() {
    run_clean(async {
        assert!(Signals::new(&[9]).is_err(), "SIGKILL cannot be caught");
        let signals = std::rc::Rc::new(Signals::new(&[SIGINT, SIGTERM]).unwrap());

        raise(SIGTERM).unwrap();
        assert_eq!(signals.recv().await.unwrap(), SIGTERM);
        raise(SIGINT).unwrap();
        assert_eq!(signals.recv().await.unwrap(), SIGINT);

        let waited = timeout_after(Duration::from_millis(5), signals.recv()).await;
        assert!(matches!(waited, Err(TrapError::TimedOut(_))));

        let s = signals.clone();
        let waiter = spawn(async move { s.recv().await }).unwrap();
        yield_now().await.unwrap();
        let cancelled = waiter.cancel().await.unwrap().unwrap_err();
        assert!(TrapError::is_cancellation(&cancelled));

        raise(SIGTERM).unwrap(); // arrives while nobody waits: kept
        assert_eq!(signals.recv().await.unwrap(), SIGTERM);

        // One waiter at a time: a second one is told, not left waiting.
        let s = signals.clone();
        let first = spawn(async move { s.recv().await }).unwrap();
        yield_now().await.unwrap();
        let busy = signals.recv().await.unwrap_err();
        assert_eq!(busy.kind(), std::io::ErrorKind::ResourceBusy);
        raise(SIGINT).unwrap();
        assert_eq!(first.join().await.unwrap().unwrap(), SIGINT);
    });
}

/// The example binary, built by `cargo test` beside this test's binary.
fn example(name: &str) -> std::path::PathBuf {
    let mut path = std::env::current_exe().unwrap();
    path.pop(); // the test binary
    path.pop(); // deps/
    path.push("examples");
    path.push(name);
    path
}

/// On SIGTERM, echo_server stops accepting, lets the open connection finish
/// its exchange, and exits 0 once it closes.
#[test]
fn echo_server_shuts_down_gracefully_on_sigterm() {
    let mut server = Command::new(example("echo_server"))
        .args(["--addr", "127.0.0.1:0", "--grace", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("echo_server runs (cargo test builds the examples)");
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();

    let mut client = StdStream::connect(&addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0; 5];
    client.write_all(b"hello").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("echo_server: SIGTERM"), "{line:?}");

    // Still served: the open connection finishes its exchange ...
    client.write_all(b"again").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again");
    // ... while new connections are refused.
    assert!(StdStream::connect(&addr).is_err());

    drop(client);
    let status = server.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// With no grace left, echo_server cancels the open connection (its client
/// sees the connection closed) and still exits 0.
#[test]
fn echo_server_cancels_open_connections_after_the_grace_period() {
    let mut server = Command::new(example("echo_server"))
        .args(["--addr", "127.0.0.1:0", "--grace", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("echo_server runs (cargo test builds the examples)");
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();

    let mut client = StdStream::connect(&addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0; 2];
    client.write_all(b"hi").unwrap();
    client.read_exact(&mut buf).unwrap();

    let killed = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let lines: Vec<&str> = rest.lines().collect();
    assert!(
        lines[0].starts_with("echo_server: SIGINT: stopped accepting; 1 connection(s) open"),
        "{lines:?}"
    );
    assert_eq!(
        lines[1..],
        ["echo_server: grace period over: open connections cancelled"]
    );
    assert_eq!(client.read(&mut buf).unwrap(), 0, "closed by the server");
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

/// A second signal during the grace period cancels the open connections at
/// once; the server still exits 0.
#[test]
fn echo_server_second_signal_cancels_at_once() {
    let mut server = Command::new(example("echo_server"))
        .args(["--addr", "127.0.0.1:0", "--grace", "3600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("echo_server runs (cargo test builds the examples)");
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let mut client = StdStream::connect(&addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0; 2];
    client.write_all(b"hi").unwrap();
    client.read_exact(&mut buf).unwrap();

    let term = || {
        let killed = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    };
    term();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("echo_server: SIGTERM: stopped accepting"),
        "{line:?}"
    );
    term();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "echo_server: second signal: open connections cancelled\n"
    );
    assert_eq!(client.read(&mut buf).unwrap(), 0, "closed by the server");
    assert_eq!(server.wait().unwrap().code(), Some(0));
}
