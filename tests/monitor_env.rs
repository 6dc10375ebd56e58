//! `TRAPLINE_MONITOR` switches the monitor on for `trapline::run`. The
//! environment is the process's, so each case runs this test binary again as
//! a child process with the variable set, running one `#[ignore]`d test that
//! does the checking inside.

use std::io;
use std::process::Command;

use trapline::net::TcpStream;

/// Runs the ignored test `name` of this binary in a child process with
/// `TRAPLINE_MONITOR=value`; asserts it passed and returns what it wrote to
/// stderr.
#[track_caller]
fn child(name: &str, value: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--test-threads", "1"])
        .env("TRAPLINE_MONITOR", value)
        .env("CHILD_MONITOR", value)
        .output()
        .expect("the test binary runs again");
    assert!(
        out.status.success(),
        "{name} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 passed"), "{name} did not run:\n{stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A free loopback port, found by binding port 0 and letting it go.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// With a port in the variable, `trapline::run` listens there, and `ps`
/// shows the main task and the monitor's own.
#[test]
fn a_port_starts_the_monitor() {
    child("inside_with_monitor", &free_port().to_string());
}

/// A value that is neither a switch, a port nor an address makes `run` fail
/// with a message that says what is expected.
#[test]
fn a_bad_value_is_a_clear_error() {
    child("inside_with_bad_value", "everywhere");
    child("inside_with_bad_value", "0.0.0.0:48802");
}

#[test]
#[ignore = "run by a_port_starts_the_monitor, in a child process"]
fn inside_with_monitor() {
    let port: u16 = std::env::var("CHILD_MONITOR").unwrap().parse().unwrap();
    let ps = trapline::run(async move {
        let conn = TcpStream::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await?;
        conn.write_all(b"ps\nquit\n").await?;
        let mut got = Vec::new();
        let mut buf = [0; 1024];
        loop {
            match conn.read(&mut buf).await? {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        Ok::<_, io::Error>(String::from_utf8(got).unwrap())
    })
    .expect("run starts with the monitor")
    .expect("the monitor answers");
    // The rows of `ps`: an id, then the name.
    let names: Vec<&str> = ps
        .lines()
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()))
        .filter_map(|mut cells| match (cells.next(), cells.next()) {
            (Some(id), Some(name)) if id.parse::<u64>().is_ok() => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["main", "monitor", "monitor client"], "{ps}");
    assert!(ps.ends_with("trapline > bye\n"), "{ps}");
}

#[test]
#[ignore = "run by a_bad_value_is_a_clear_error, in a child process"]
fn inside_with_bad_value() {
    let value = std::env::var("CHILD_MONITOR").unwrap();
    let err = trapline::run(async {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let expected = if value.contains(':') {
        format!("trapline monitor: {value} is not a loopback address; it listens on loopback only")
    } else {
        format!(
            "TRAPLINE_MONITOR=\"{value}\": expected 1, a port, or a loopback address such as 127.0.0.1:48802"
        )
    };
    assert_eq!(err.to_string(), expected);
}

/// Regression: with the variable set, every `trapline::run` wants the same
/// address. A second kernel on another thread of the program, started while
/// the first one's monitor listens, runs without a monitor (and says so in
/// a warning) instead of failing with `AddrInUse`.
#[test]
fn a_second_kernel_runs_without_the_taken_monitor() {
    let port = free_port();
    let stderr = child("inside_two_kernels", &port.to_string());
    let warning = format!(
        "trapline monitor: cannot listen on 127.0.0.1:{port}: Address already in use (os error 98); this kernel runs without a monitor"
    );
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].ends_with(&warning), "{stderr}");
}

#[test]
#[ignore = "run by a_second_kernel_runs_without_the_taken_monitor, in a child process"]
fn inside_two_kernels() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    env_logger::builder()
        .parse_filters("trapline::monitor=warn")
        .init();
    let port: u16 = std::env::var("CHILD_MONITOR").unwrap().parse().unwrap();
    let addr = ([127, 0, 0, 1], port).into();
    let (started, wait_started) = mpsc::channel();
    let second_done = Arc::new(AtomicBool::new(false));
    let first = std::thread::spawn({
        let second_done = second_done.clone();
        move || {
            trapline::run(async move {
                started.send(()).unwrap();
                // Serve (the monitor is a task of this kernel) until the
                // second kernel has run; at most ten seconds.
                for _ in 0..10_000 {
                    if second_done.load(Ordering::SeqCst) {
                        break;
                    }
                    trapline::sleep(Duration::from_millis(1)).await?;
                }
                assert!(
                    second_done.load(Ordering::SeqCst),
                    "the second kernel ended"
                );
                ask(addr, b"ps\nquit\n").await
            })
        }
    });
    wait_started.recv().unwrap();
    // The first kernel's monitor listens: this one cannot, and runs anyway.
    let second = trapline::run(async move {
        let first_ps = ask(addr, b"ps\nquit\n").await?;
        // A task spawned here is the next after main: no monitor task was
        // started in this kernel.
        let main = trapline::current()?;
        let spawned = trapline::spawn(async {})?;
        Ok::<_, io::Error>((first_ps, spawned.id().serial() - main.serial()))
    })
    .expect("the second kernel starts although the address is taken")
    .expect("it reaches the first kernel's monitor");
    second_done.store(true, Ordering::SeqCst);
    let (first_ps, spawned) = second;
    assert_eq!(
        names(&first_ps),
        ["main", "monitor", "monitor client"],
        "{first_ps}"
    );
    assert_eq!(spawned, 1, "the task spawned after main");
    let ps = first.join().unwrap().unwrap().unwrap();
    assert_eq!(names(&ps), ["main", "monitor", "monitor client"], "{ps}");
}

/// Sends `commands` to the monitor at `addr`; returns all it answered.
async fn ask(addr: std::net::SocketAddr, commands: &[u8]) -> io::Result<String> {
    let conn = TcpStream::connect(addr).await?;
    conn.write_all(commands).await?;
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    loop {
        match conn.read(&mut buf).await? {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    Ok(String::from_utf8(got).unwrap())
}

/// The names column of a `ps` answer.
fn names(ps: &str) -> Vec<&str> {
    ps.lines()
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()))
        .filter_map(|mut cells| match (cells.next(), cells.next()) {
            (Some(id), Some(name)) if id.parse::<u64>().is_ok() => Some(name),
            _ => None,
        })
        .collect()
}
