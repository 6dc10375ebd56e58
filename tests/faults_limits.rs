//! The echo service at the process's limits, each run in a child process
//! so that its fd limit is its own: 10,000 concurrent connections, and
//! accepting while the process is out of fds.
//!
//! The child is this test binary again, running the ignored test
//! `child_process` with `TRAPLINE_FAULT_CHILD` naming its role. It prints
//! its listening port on its first line and its counts on its last, and
//! stops when its stdin closes.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use futures::channel::oneshot;
use trapline::echo::{serve, EchoConfig, EchoStats};
use trapline::net::{TcpListener, TcpStream};
use trapline::{spawn, timeout_after, Kernel};
use util::fds::{allow_fds, highest_fd, set_fd_limit};
use util::{assert_clean, run_with_stats, Rng};

/// Concurrent connections in the flood test.
const CONNECTIONS: usize = 10_000;

/// How long one of the 10,000 clients may take, on the real clock, before
/// the test fails instead of hanging on a lost byte.
const CLIENT_LIMIT: Duration = Duration::from_secs(30);

/// A child process, killed and waited for however the test ends (a
/// failed assertion must not leave a server running).
struct Running(Option<Child>);

impl Running {
    fn take(&mut self) -> Child {
        self.0.take().expect("the child is still here")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child running `role`; returns it with the port it listens on.
fn start_child(
    role: &str,
) -> (
    Running,
    ChildStdin,
    BufReader<std::process::ChildStdout>,
    SocketAddr,
) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TRAPLINE_FAULT_CHILD", role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test binary runs again as a child");
    let stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let child = Running(Some(child));
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended early"
        );
        // The test harness may print its own words before ours on the line.
        if let Some((_, port)) = line.trim().split_once("port ") {
            let addr = SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap()));
            return (child, stdin, out, addr);
        }
    }
}

/// Closes the child's stdin and returns its last report line's counts.
fn finish_child(
    mut child: Running,
    stdin: ChildStdin,
    mut out: BufReader<std::process::ChildStdout>,
) -> Vec<(String, u64)> {
    drop(stdin);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.take().wait().unwrap();
    assert!(status.success(), "the child failed:\n{rest}");
    let report = rest
        .lines()
        .find_map(|l| l.split_once("report ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no report in:\n{rest}"));
    report
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn count(report: &[(String, u64)], key: &str) -> u64 {
    report
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap()
}

/// 10,000 connections open at once against a child's echo service, each
/// sending its own random payload (1 to 1,024 bytes) once all are
/// connected: every byte comes back, in order, and the service saw all
/// 10,000 at once. Each client has 30 s of real time (a lost byte fails
/// the test, naming the connection, instead of hanging it). Skipped, with
/// the limit on stderr, if this process may not open that many fds.
#[test]
fn ten_thousand_concurrent_connections_echo_every_byte() {
    if let Err(why) = allow_fds(CONNECTIONS as u64 + 256) {
        eprintln!("ten_thousand_concurrent_connections_echo_every_byte skipped: {why}");
        return;
    }
    let (child, stdin, out, addr) = start_child("serve");
    let (sent, stats) = run_with_stats(async move {
        let mut streams = Vec::with_capacity(CONNECTIONS);
        // Connect in waves, to stay inside the listen backlog.
        while streams.len() < CONNECTIONS {
            let wave = (CONNECTIONS - streams.len()).min(500);
            let connected =
                futures::future::join_all((0..wave).map(|_| TcpStream::connect(addr))).await;
            for s in connected {
                streams.push(s.expect("connect"));
            }
        }
        let mut tasks = Vec::with_capacity(CONNECTIONS);
        for (i, stream) in streams.into_iter().enumerate() {
            tasks.push(
                spawn(async move {
                    let mut rng = Rng::new(i as u64 + 1);
                    let len = 1 + rng.below(1024) as usize;
                    let payload = rng.bytes(len);
                    let mut back = vec![0; len];
                    timeout_after(CLIENT_LIMIT, async {
                        stream.write_all(&payload).await?;
                        stream.read_exact(&mut back).await
                    })
                    .await
                    .unwrap_or_else(|e| {
                        panic!("connection {i}: no echo within {CLIENT_LIMIT:?}: {e}")
                    })?;
                    assert!(back == payload, "connection {i}: bytes differ");
                    Ok::<_, std::io::Error>(len as u64)
                })
                .unwrap(),
            );
        }
        let mut sent = 0;
        for t in tasks {
            sent += t.join().await.unwrap().unwrap();
        }
        sent
    });
    assert_clean(&stats);
    let report = finish_child(child, stdin, out);
    eprintln!("service: {report:?}");
    assert_eq!(count(&report, "accepted"), CONNECTIONS as u64);
    assert_eq!(
        count(&report, "peak"),
        CONNECTIONS as u64,
        "all open at once"
    );
    assert_eq!(count(&report, "bytes"), sent);
    assert_eq!(count(&report, "failed"), 0);
    assert_eq!(count(&report, "leaks"), 0);
}

/// A child out of fds (its soft limit lowered to the fds it has, the free
/// numbers below it taken by fillers) cannot accept the three clients waiting in its
/// backlog: accept fails, and the service backs off instead of spinning —
/// a few failed accepts and a few hundred loop passes at most (besides the
/// timer's spin before each back-off's deadline) while the
/// clients wait. Once the child drops its fillers, all three are served.
#[test]
fn accept_at_fd_exhaustion_backs_off_and_resumes() {
    let (child, mut stdin, out, addr) = start_child("exhausted");
    let clients: Vec<StdStream> = (0..3)
        .map(|i| {
            let s = StdStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            (&s).write_all(format!("ping {i}").as_bytes()).unwrap();
            s
        })
        .collect();
    // Let the child meet its limit for a while (this is not measured).
    thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"free\n").unwrap();
    stdin.flush().unwrap();
    for (i, s) in clients.iter().enumerate() {
        let mut back = [0; 6];
        (&*s).read_exact(&mut back).unwrap();
        assert_eq!(&back, format!("ping {i}").as_bytes());
    }
    drop(clients);
    let report = finish_child(child, stdin, out);
    eprintln!("service: {report:?}");
    assert_eq!(count(&report, "accepted"), 3);
    let errors = count(&report, "accept_errors");
    assert!(
        (1..=40).contains(&errors),
        "{errors} failed accepts: {report:?}"
    );
    let passes = count(&report, "passes");
    assert!(passes < 1000, "the loop spun: {passes} passes");
    assert_eq!(count(&report, "leaks"), 0);
}

/// The child's side of the tests above; runs only when started by them.
#[test]
#[ignore = "run by the other tests of this file, in a child process"]
fn child_process() {
    let Ok(role) = std::env::var("TRAPLINE_FAULT_CHILD") else {
        return;
    };
    let mut kernel = Kernel::new().unwrap();
    match role.as_str() {
        "serve" => allow_fds(CONNECTIONS as u64 + 256).expect("raise the fd limit"),
        "exhausted" => {}
        other => panic!("unknown role {other}"),
    }
    // Stdin: a line "free" drops the fillers; end-of-file stops the service.
    let (free_tx, free_rx) = oneshot::channel::<()>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    thread::spawn(move || {
        let mut free_tx = Some(free_tx);
        for line in std::io::stdin().lock().lines() {
            if line.is_ok_and(|l| l.trim() == "free") {
                free_tx.take().map(|tx| tx.send(()));
            }
        }
        let _ = stop_tx.send(());
    });
    let stats = Rc::new(EchoStats::default());
    // Every client of the flood at once, whatever the default is.
    let config = EchoConfig {
        max_connections: CONNECTIONS,
        ..EchoConfig::default()
    };
    kernel
        .run({
            let stats = stats.clone();
            async move {
                let addr = "127.0.0.1:0".parse().unwrap();
                let listener = TcpListener::bind_with_backlog(addr, 4096).unwrap();
                let port = listener.local_addr().unwrap().port();
                let service = spawn(serve(listener, config, stats)).unwrap();
                // Out of fds: a limit just past the highest fd, and every
                // free number below it taken by a filler.
                let mut fillers = Vec::new();
                if role == "exhausted" {
                    set_fd_limit(highest_fd() + 4).expect("lower the fd limit");
                    while let Ok(f) = std::fs::File::open("/dev/null") {
                        fillers.push(f);
                    }
                }
                println!("port {port}");
                let _ = free_rx.await;
                drop(fillers);
                let _ = stop_rx.await;
                let _ = service.cancel().await;
            }
        })
        .unwrap();
    let k = kernel.stats();
    let leaks = k.tasks + k.parked + k.registrations + k.released_at_exit + k.timers + k.timeouts;
    println!(
        "report accepted={} peak={} bytes={} failed={} accept_errors={} passes={} spins={} leaks={leaks}",
        stats.accepted(),
        stats.peak(),
        stats.bytes(),
        stats.failed(),
        stats.accept_errors(),
        // A busy loop shows in the passes; the timer's designed spin before
        // each back-off's deadline does not count.
        k.passes - k.timer_spins,
        k.timer_spins,
    );
}
