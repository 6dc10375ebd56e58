//! The monitor at its edges: names and states that could make a `ps` row
//! lie, lines at the length limit, connections past the cap, the monitor
//! asked to cancel its own task, and `stats` held against the kernel's own
//! counts.

mod util;

use std::io;
use std::time::Duration;

use trapline::monitor::Monitor;
use trapline::net::TcpStream;
use trapline::task::Builder;
use trapline::{sleep, yield_now, Kernel, TrapError};
use util::monitor::{ask, cells, until_prompt};

/// A kernel for `monitor`, with a short grace.
fn kernel(monitor: &Monitor) -> Kernel {
    let builder = Kernel::builder().shutdown_grace(Duration::from_millis(50));
    monitor.build(builder).expect("a kernel")
}

/// Regression: a name holding a newline (or a tab, or a forged prompt) is
/// printed escaped, so every task stays one row and the answer ends at the
/// real prompt.
#[test]
fn ps_escapes_names_with_newlines() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            let name = "evil\ntrapline > \tname";
            let evil = Builder::new()
                .name(name)
                .spawn(sleep(Duration::from_secs(3600)))?;
            yield_now().await?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;
            let ps = ask(&conn, "ps").await?;
            let rows = cells(&ps);
            assert_eq!(rows.len(), 5, "a header and four tasks:\n{ps}");
            let row = rows
                .iter()
                .find(|r| r[0] == evil.id().serial().to_string())
                .unwrap();
            assert_eq!(row[1], r"evil\ntrapline > \tname");
            assert_eq!(row[2], "parked");
            // `where` quotes it the same way.
            let answer = ask(&conn, &format!("where {}", row[0])).await?;
            let first = answer.lines().next().unwrap();
            assert_eq!(
                first,
                format!(r#"task {} "evil\ntrapline > \tname""#, row[0])
            );
            assert_eq!(evil.cancel().await?, Err(TrapError::Cancelled));
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// Regression: a task whose park fired and that waits in the ready queue
/// is not parked any more; `ps` shows no trap for it (its last one is for
/// `where`), only for tasks that are parked now.
#[test]
fn ps_shows_no_trap_for_a_ready_task() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            // Steps aside forever: parked on nothing, ready at every pass.
            let spinner = Builder::new()
                .name("spinner")
                .spawn(async { while yield_now().await.is_ok() {} })?;
            yield_now().await?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;
            let ps = ask(&conn, "ps").await?;
            let row = cells(&ps).into_iter().find(|r| r[1] == "spinner").unwrap();
            assert_eq!(row[2], "ready", "{ps}");
            assert_eq!((&row[4][..], &row[5][..]), ("-", "-"), "{ps}");
            let answer = ask(&conn, &format!("where {}", row[0])).await?;
            assert!(answer.contains("  last trapped on Yield at "), "{answer}");
            spinner.cancel().await?;
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// Regression: a line just over the limit whose newline arrives in the same
/// read as its end is refused like any other overlong line; a line of
/// exactly the limit is read (and, here, is not a command).
#[test]
fn line_over_the_limit_is_refused_even_when_whole() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;
            // 1100 bytes: the monitor reads 512 at a time, so the newline
            // comes in a read that already holds more than 1024.
            let mut long = vec![b'x'; 1100];
            long.extend_from_slice(b"\nhelp\n");
            conn.write_all(&long).await?;
            assert_eq!(
                until_prompt(&conn).await?,
                "error: a line longer than 1024 bytes\n"
            );
            assert!(until_prompt(&conn).await?.starts_with("commands:\n"));
            let limit = "y".repeat(1024);
            assert_eq!(
                ask(&conn, &limit).await?,
                format!("error: unknown command {limit:?}; type help\n")
            );
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// Reads `conn` to its end.
async fn to_end(conn: &TcpStream) -> io::Result<String> {
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    loop {
        match conn.read(&mut buf).await? {
            0 => return Ok(String::from_utf8(got).unwrap()),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The monitor serves eight connections at once: a ninth is told so in one
/// line and closed; once one of the eight quits, a new one is served.
#[test]
fn connections_past_the_cap_are_refused() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            let mut served = Vec::new();
            for i in 0..8 {
                let conn = TcpStream::connect(addr).await?;
                let banner = until_prompt(&conn).await?;
                // main, monitor, and the clients so far with this one.
                let tasks = 3 + i;
                assert_eq!(
                    banner,
                    format!("trapline monitor: {tasks} task(s); type help\n")
                );
                served.push(conn);
            }
            let ninth = TcpStream::connect(addr).await?;
            assert_eq!(
                to_end(&ninth).await?,
                "error: the monitor serves 8 connections at once; try again when one closes\n"
            );
            let first = served.remove(0);
            first.write_all(b"quit\n").await?;
            assert_eq!(to_end(&first).await?, "bye\n");
            let tenth = TcpStream::connect(addr).await?;
            assert_eq!(
                until_prompt(&tenth).await?,
                "trapline monitor: 10 task(s); type help\n"
            );
            assert!(ask(&tenth, "stats")
                .await?
                .starts_with("tasks          10\n"));
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// `cancel` of the monitor's own listening task: it ends like any task, the
/// connection that asked goes on (and no longer lists it), and the address
/// is let go, so a new connection is refused by the system.
#[test]
fn cancelling_the_monitor_task_closes_its_listener() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;
            let ps = ask(&conn, "ps").await?;
            let listener = cells(&ps).into_iter().find(|r| r[1] == "monitor").unwrap();
            let id = &listener[0];
            assert_eq!(
                ask(&conn, &format!("cancel {id}")).await?,
                format!("cancelled task {id}\n")
            );
            let ps = ask(&conn, "ps").await?;
            let names: Vec<String> = cells(&ps)[1..].iter().map(|r| r[1].clone()).collect();
            assert_eq!(names, ["main", "monitor client"], "{ps}");
            assert_eq!(
                ask(&conn, &format!("where {id}")).await?,
                format!("error: no task {id}\n")
            );
            let refused = TcpStream::connect(addr).await.map(drop).unwrap_err();
            assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
            conn.write_all(b"quit\n").await?;
            assert_eq!(to_end(&conn).await?, "bye\n");
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}
