//! The monitor, asked over TCP by a task of the kernel it watches: `ps`,
//! `where`, `cancel`, `stats`, `help`, `quit`, and wrong commands, against a
//! kernel whose tasks are known.

mod util;

use std::future::pending;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use trapline::monitor::Monitor;
use trapline::net::TcpStream;
use trapline::task::Builder;
use trapline::{yield_now, Kernel, TrapError};
use util::monitor::{ask, cells, is_duration, until_prompt};

/// A kernel for `monitor`, with a short grace: the tasks that never trap
/// (`pending()`) are dropped at shutdown.
fn kernel(monitor: &Monitor) -> Kernel {
    let builder = Kernel::builder().shutdown_grace(Duration::from_millis(50));
    monitor.build(builder).expect("a kernel")
}

/// `ps` lists every task with its name, state, polls, time parked and the
/// trap it waits under; the columns line up.
#[test]
fn ps_lists_known_tasks() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            let (near, far) = util::tcp_pair().await?;
            let reader_fd = far.as_raw_fd();
            let reader = Builder::new().name("reader").spawn(async move {
                let mut buf = [0; 8];
                far.read(&mut buf).await
            })?;
            let idle = Builder::new().name("idle").spawn(pending::<()>())?;
            yield_now().await?; // both run once and wait
            let conn = TcpStream::connect(addr).await?;
            let banner = until_prompt(&conn).await?;
            assert_eq!(banner, "trapline monitor: 5 task(s); type help\n");
            let ps = ask(&conn, "ps").await?;
            let rows = cells(&ps);
            assert_eq!(rows[0], ["ID", "NAME", "STATE", "POLLS", "PARKED", "TRAPS"]);
            assert_eq!(rows.len(), 6, "{ps}");
            let row = |name: &str| {
                rows.iter()
                    .find(|r| r[1] == name)
                    .cloned()
                    .unwrap_or_else(|| panic!("no {name} in\n{ps}"))
            };
            let main = trapline::current()?;
            let (m, r, i) = (row("main"), row("reader"), row("idle"));
            assert_eq!(m[0], main.serial().to_string());
            assert_eq!(&m[2], "parked");
            assert_eq!(m[5], format!("ReadWait(fd {})", conn.as_raw_fd()));
            assert_eq!(r[0], reader.id().serial().to_string());
            assert_eq!((&r[2], &r[3]), (&"parked".to_string(), &"1".to_string()));
            assert!(is_duration(&r[4]), "time parked: {}", r[4]);
            assert_eq!(r[5], format!("ReadWait(fd {reader_fd})"));
            assert_eq!(i[0], idle.id().serial().to_string());
            assert_eq!([&i[2], &i[3], &i[5]], ["waiting", "1", "-"]);
            assert!(is_duration(&i[4]), "time waiting: {}", i[4]);
            let (server, client) = (row("monitor"), row("monitor client"));
            assert_eq!(server[2..4], ["parked", "2"]);
            assert!(server[5].starts_with("ReadWait(fd "), "{server:?}");
            assert_eq!(client[2..], ["running", "2", "-", "-"]);
            // The ids are in order, and every row has its six columns.
            let ids: Vec<u64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
            assert!(rows.iter().all(|r| r.len() == 6), "{ps}");
            drop(near);
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// `where ID` names the test file's line of the await the task is parked
/// at, and the line it was spawned at; `cancel ID` delivers `Cancelled` at
/// that trap; afterwards the task is gone.
#[test]
fn where_and_cancel() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    let file = file!();
    kernel
        .run(async {
            let addr = monitor.start()?;
            let (near, far) = util::tcp_pair().await?;
            let fd = far.as_raw_fd();
            let read_line = line!() + 3;
            let body = async move {
                let mut buf = [0; 8];
                far.read(&mut buf).await
            };
            let (reader, spawn_line) = (Builder::new().name("reader").spawn(body)?, line!());
            let id = reader.id().serial();
            yield_now().await?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;

            let main = trapline::current()?.serial();
            let answer = ask(&conn, &format!("where {id}")).await?;
            let lines: Vec<&str> = answer.lines().collect();
            assert_eq!(lines.len(), 3, "{answer}");
            assert_eq!(lines[0], format!("task {id} \"reader\""));
            assert!(
                lines[1].starts_with(&format!("  spawned at {file}:{spawn_line}:")),
                "{answer}"
            );
            assert!(lines[1].ends_with(&format!(" by task {main}")), "{answer}");
            let parked = format!("  parked on ReadWait(fd {fd}) at {file}:{read_line}:");
            assert!(lines[2].starts_with(&parked), "{answer}");

            let answer = ask(&conn, &format!("cancel {id}")).await?;
            assert_eq!(answer, format!("cancelled task {id}\n"));
            let read = reader.join().await?;
            let err = read.unwrap_err();
            assert_eq!(TrapError::from_io(&err), Some(&TrapError::Cancelled));
            let answer = ask(&conn, &format!("where {id}")).await?;
            assert_eq!(answer, format!("error: no task {id}\n"));
            let answer = ask(&conn, &format!("cancel {id}")).await?;
            assert_eq!(answer, format!("error: no task {id}\n"));

            // A task that never reaches a trap: marked once, refused after.
            let idle = Builder::new().name("idle").spawn(pending::<()>())?;
            let idle_id = idle.id().serial();
            yield_now().await?;
            let answer = ask(&conn, &format!("where {idle_id}")).await?;
            assert!(
                answer.ends_with("  waiting on a foreign waker, at no trap\n"),
                "{answer}"
            );
            let answer = ask(&conn, &format!("cancel #{idle_id}")).await?;
            assert_eq!(answer, format!("cancelled task {idle_id}\n"));
            let answer = ask(&conn, &format!("cancel {idle_id}")).await?;
            assert_eq!(
                answer,
                format!("error: task {idle_id} was already cancelled\n")
            );

            // A task that only steps aside is never parked: `where` says it
            // is ready, and where it last trapped.
            let spin = async {
                while yield_now().await.is_ok() {} // until cancelled
            };
            let spin_line = line!() - 2;
            let spinner = Builder::new().name("spinner").spawn(spin)?;
            let spin_id = spinner.id().serial();
            yield_now().await?;
            let answer = ask(&conn, &format!("where {spin_id}")).await?;
            let lines: Vec<&str> = answer.lines().collect();
            assert_eq!(lines[2], "  not parked (ready)", "{answer}");
            let last = format!("  last trapped on Yield at {file}:{spin_line}:");
            assert!(lines[3].starts_with(&last), "{answer}");
            spinner.cancel().await?;
            drop(near);
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// `stats` gives the kernel's counts one a line, with parks by trap kind,
/// each the kernel's own (`Kernel::probe`);
/// `help` lists the commands; wrong lines get one `error:` line and the
/// connection goes on; `quit` says bye and closes.
#[test]
fn stats_help_errors_and_quit() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    let probe = kernel.probe();
    kernel
        .run(async move {
            let addr = monitor.start()?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;

            let before = probe.stats().expect("the kernel runs");
            let stats = ask(&conn, "stats").await?;
            let after = probe.stats().expect("the kernel runs");
            let rows: Vec<(&str, &str)> = stats
                .lines()
                .map(|l| {
                    let (key, value) = l.split_at(14);
                    (key.trim_end(), value.trim_start())
                })
                .collect();
            let keys: Vec<&str> = rows.iter().map(|(k, _)| *k).collect();
            assert_eq!(
                keys,
                [
                    "tasks",
                    "ready",
                    "parked",
                    "registrations",
                    "timers",
                    "timeouts",
                    "wait queues",
                    "passes",
                    "timer spins",
                    "polls",
                    "events",
                    "wakeups",
                    "spawned"
                ]
            );
            let value = |key: &str| rows.iter().find(|(k, _)| *k == key).unwrap().1;
            // What stands still between the answer and now, against the
            // kernel's own counts: main, monitor and monitor client; two of
            // them parked on a read (main and the monitor then, the client
            // and the monitor now); three sockets; nothing timed or queued.
            let parked = probe.parked_by_trap();
            assert_eq!(parked, [("ReadWait", 2)]);
            let now = |n: usize| n.to_string();
            assert_eq!(value("tasks"), now(after.tasks));
            assert_eq!(after.tasks, 3);
            assert_eq!(value("ready"), now(after.ready));
            assert_eq!(value("parked"), format!("{} (ReadWait 2)", after.parked));
            assert_eq!(value("registrations"), now(after.registrations));
            assert_eq!(after.registrations, 3);
            assert_eq!(value("timers"), now(after.timers));
            assert_eq!(value("timeouts"), now(after.timeouts));
            assert_eq!(value("wait queues"), now(after.wait_queues));
            assert_eq!(value("spawned"), after.spawned.to_string());
            assert_eq!(after.spawned, 3);
            // What runs on: between the counts before the question and
            // after the answer.
            for (key, lo, hi) in [
                ("passes", before.passes, after.passes),
                ("timer spins", before.timer_spins, after.timer_spins),
                ("polls", before.polls, after.polls),
                ("events", before.events, after.events),
                ("wakeups", before.wakeups, after.wakeups),
            ] {
                let n: u64 = value(key).parse().unwrap();
                assert!(lo <= n && n <= hi, "{key} {n} not in {lo}..={hi}");
            }
            // The answer was built by another task's poll, after an event.
            let polls: u64 = value("polls").parse().unwrap();
            let events: u64 = value("events").parse().unwrap();
            assert!(before.polls < polls && polls < after.polls);
            assert!(before.events < events);

            let help = ask(&conn, "help").await?;
            assert_eq!(
                help,
                "commands:\n\
                 \x20 ps          every task: id, name, state, polls, time parked, traps\n\
                 \x20 where ID    the lines of task ID's awaits, and of its spawn\n\
                 \x20 cancel ID   cancel task ID (it sees Cancelled at its trap)\n\
                 \x20 stats       the kernel's counts\n\
                 \x20 help        this list\n\
                 \x20 quit        close this connection\n"
            );
            for (line, error) in [
                ("frobnicate", "unknown command \"frobnicate\"; type help"),
                ("where", "where needs a task id, as in \"where 2\""),
                (
                    "cancel abc",
                    "\"abc\" is not a task id (a number, as ps shows)",
                ),
                ("where 18446744073709551615", "no task 18446744073709551615"),
                ("ps now", "ps takes no argument, not \"now\""),
            ] {
                assert_eq!(ask(&conn, line).await?, format!("error: {error}\n"));
            }
            conn.write_all(b"\xff\xfe\n").await?;
            assert_eq!(until_prompt(&conn).await?, "error: not UTF-8 text\n");
            assert_eq!(ask(&conn, "").await?, "", "a blank line: just the prompt");
            // The connection's task will not cancel itself.
            let ps = ask(&conn, "ps").await?;
            let client = cells(&ps)
                .into_iter()
                .find(|r| r[1] == "monitor client")
                .unwrap();
            let answer = ask(&conn, &format!("cancel {}", client[0])).await?;
            assert_eq!(
                answer,
                format!(
                    "error: task {} is this connection; type quit to leave\n",
                    client[0]
                )
            );

            conn.write_all(b"quit\n").await?;
            let mut rest = Vec::new();
            let mut buf = [0; 64];
            loop {
                match conn.read(&mut buf).await? {
                    0 => break,
                    n => rest.extend_from_slice(&buf[..n]),
                }
            }
            assert_eq!(rest, b"bye\n", "then the connection closes");
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// A line longer than the monitor reads is refused, dropped up to its end,
/// and the connection goes on.
#[test]
fn overlong_line_is_refused() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr: SocketAddr = monitor.start()?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;
            let mut long = vec![b'x'; 3000];
            long.extend_from_slice(b"\nhelp\n");
            conn.write_all(&long).await?;
            assert_eq!(
                until_prompt(&conn).await?,
                "error: a line longer than 1024 bytes\n"
            );
            assert!(until_prompt(&conn).await?.starts_with("commands:\n"));
            assert!(ask(&conn, "stats").await?.starts_with("tasks "));
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// A client that sends commands and never reads the answers does not hold
/// the kernel up: its connection's task parks on `WriteWait` once the socket
/// is full, and another connection is answered meanwhile (and sees it so).
#[test]
fn a_reader_that_never_reads_blocks_nobody() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            let flood = TcpStream::connect(addr).await?;
            let watcher = TcpStream::connect(addr).await?;
            until_prompt(&watcher).await?;
            // About 20 MB of answers: more than both socket buffers hold.
            let writer = trapline::spawn(async move {
                flood.write_all(&b"help\n".repeat(50_000)).await?;
                Ok::<_, io::Error>(flood) // kept open, never read
            })?;
            let mut stuck = None;
            for _ in 0..10_000 {
                let ps = ask(&watcher, "ps").await?;
                let clients: Vec<Vec<String>> = cells(&ps)
                    .into_iter()
                    .filter(|r| r[1] == "monitor client")
                    .collect();
                if let Some(row) = clients.iter().find(|r| r[5].starts_with("WriteWait")) {
                    stuck = Some(row.clone());
                    break;
                }
                yield_now().await?;
            }
            let stuck = stuck.expect("the flooded connection parks on WriteWait");
            assert_eq!(stuck[2], "parked");
            // Its input may have filled up too: cancelled or done, the
            // writer ends, and the flooded connection closes with it.
            drop(writer.cancel().await?);
            assert!(ask(&watcher, "stats").await?.starts_with("tasks "));
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// Only loopback addresses are accepted, and a monitor started in a kernel
/// it does not watch says so.
#[test]
fn refuses_what_it_cannot_do() {
    let err = Monitor::new("0.0.0.0:48802".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let monitor = Monitor::new("[::1]:0".parse().unwrap()).unwrap();
    let err = trapline::run(async { monitor.start() })
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "trapline monitor: started outside the kernel it watches"
    );
}
