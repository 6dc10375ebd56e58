//! Syscalls per echoed message, counted by `strace -c -f` and by `perf stat`.
//!
//! Each server runs in a child process (this binary with `--serve`) under a
//! counter; the load generator sends exactly `messages` messages in a closed
//! loop, then the server's stdin is closed, which ends it, and the counter's
//! summary is parsed. The count includes the child's start-up (a few hundred
//! syscalls), which 100,000 messages make negligible.
//!
//! Two counters, because the count depends on timing. Whether a server's
//! second `read` finds the next message already there or meets `EAGAIN` (and
//! then waits in `epoll_wait`) depends on how fast the peer answers:
//!
//! - **`strace -c -f`** stops the server at every syscall and resumes it
//!   from the tracer, tens of microseconds each, so the peer is fast
//!   compared with the traced server and reads meet data more often than
//!   untraced. It names every syscall.
//! - **`perf stat`** on the syscall tracepoints counts inside the Linux
//!   kernel without stopping anything: the server runs at its own pace.
//!   These are the figures to compare. Where perf is missing or not allowed
//!   (`perf_event_paranoid`), its columns say so and strace's stand alone.
//!
//! Discussion: the load generator is pinned to its core, and a child
//! inherits the affinity of the thread that spawns it. The counters used to
//! be spawned from the pinned thread, so strace ran on the load generator's
//! core and slowed the generator down instead of the server: the server then
//! found every next message waiting, never met `EAGAIN` and never called
//! `epoll_wait`, and trapline summed to 2.0 syscalls a message where a trace
//! read 4. Now the counters are spawned from an unpinned thread and only
//! the load's own thread is pinned.

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::reaped::Reaped;
use std::time::Duration;

use crate::load::{self, Mode, Plan};
use crate::servers::Server;

/// The syscalls of one server over one load.
struct Count {
    total: u64,
    /// (name, calls), busiest first.
    by_name: Vec<(String, u64)>,
}

/// Parses `strace -c`'s summary table.
fn parse_strace(summary: &str) -> Count {
    let mut by_name = Vec::new();
    let mut total = 0;
    for line in summary.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[0].parse::<f64>().is_err() {
            continue;
        }
        let (Some(name), Ok(calls)) = (cols.last(), cols[3].parse::<u64>()) else {
            continue;
        };
        if *name == "total" {
            total = calls;
        } else {
            by_name.push((name.to_string(), calls));
        }
    }
    by_name.sort_by_key(|b| std::cmp::Reverse(b.1));
    Count { total, by_name }
}

/// The syscalls `perf stat` counts by name, beside the total of all.
const PERF_NAMES: [&str; 5] = ["recvfrom", "sendto", "epoll_wait", "read", "write"];

/// Parses `perf stat -x,` output: `value,unit,event,...` a line. `None` if
/// a counter could not be read (`<not supported>`, `<not counted>`).
fn parse_perf(out: &str) -> Option<Count> {
    let mut total = None;
    let mut by_name = Vec::new();
    for line in out.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let cols: Vec<&str> = line.split(',').collect();
        let (value, event) = (cols.first()?, cols.get(2)?);
        let calls: u64 = value.parse().ok()?;
        if *event == "raw_syscalls:sys_enter" {
            total = Some(calls);
        } else if let Some(name) = event.strip_prefix("syscalls:sys_enter_") {
            by_name.push((name.to_string(), calls));
        }
    }
    by_name.sort_by_key(|b| std::cmp::Reverse(b.1));
    Some(Count {
        total: total?,
        by_name,
    })
}

/// Which counter a run is under.
#[derive(Clone, Copy, PartialEq)]
enum Counter {
    Strace,
    Perf,
}

impl Counter {
    /// The command that runs `--serve server` under this counter, its
    /// summary written to `out`.
    fn command(self, server: Server, port: u16, out: &Path) -> io::Result<Command> {
        let mut cmd = match self {
            Counter::Strace => {
                let mut c = Command::new("strace");
                c.args(["-c", "-f", "-o"]).arg(out);
                c
            }
            Counter::Perf => {
                let mut events = vec!["raw_syscalls:sys_enter".to_string()];
                events.extend(PERF_NAMES.iter().map(|n| format!("syscalls:sys_enter_{n}")));
                let mut c = Command::new("perf");
                c.args(["stat", "-x,", "-o"])
                    .arg(out)
                    .args(["-e", &events.join(","), "--"]);
                c
            }
        };
        cmd.arg(std::env::current_exe()?)
            .args(["--serve", server.name(), "--port", &port.to_string()])
            .stdin(Stdio::piped())
            .stderr(Stdio::null());
        Ok(cmd)
    }

    fn name(self) -> &'static str {
        match self {
            Counter::Strace => "strace",
            Counter::Perf => "perf",
        }
    }
}

/// The syscalls of `server` under `plan` as `counter` saw them, and how many
/// echoes they served. Call it from a thread that is not pinned: the counter
/// inherits the affinity of the thread that spawns it (see Discussion).
fn count(
    counter: Counter,
    server: Server,
    port: u16,
    plan: &Plan,
    load_core: usize,
) -> io::Result<(Option<Count>, u64)> {
    let out = std::env::temp_dir().join(format!(
        "trapline-echo-{}-{}-{port}",
        counter.name(),
        server.name()
    ));
    let mut child =
        Reaped(counter.command(server, port, &out)?.spawn().map_err(|e| {
            io::Error::other(format!("{}: {e} (is it installed?)", counter.name()))
        })?);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut tries = 0;
    while TcpStream::connect(addr).is_err() {
        tries += 1;
        if tries > 200 || child.0.try_wait()?.is_some() {
            return Err(io::Error::other(format!(
                "{} under {} never listened on {addr}",
                server.name(),
                counter.name()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let plan = Plan { addr, ..*plan };
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            crate::pin::pin_to(load_core);
            load::run(&plan)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the load generator panicked")))
    });
    // Closing its stdin ends the server; the counter sees it exit and sums up.
    drop(child.0.stdin.take());
    child.0.wait()?;
    let summary = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    let outcome = outcome?;
    // The last read can complete a few echoes past the count.
    if outcome.messages < plan.messages.unwrap_or(0) {
        return Err(io::Error::other("the load ended early"));
    }
    let parsed = match counter {
        Counter::Strace => Some(parse_strace(&summary?)),
        Counter::Perf => summary.ok().as_deref().and_then(parse_perf),
    };
    Ok((parsed, outcome.messages))
}

/// Whether `perf stat` can count syscall tracepoints here.
fn perf_works() -> bool {
    Command::new("perf")
        .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"])
        .stdout(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stderr).lines().any(|l| {
                    l.split(',')
                        .next()
                        .is_some_and(|v| v.parse::<u64>().is_ok())
                })
        })
}

/// Counts syscalls per echoed message for every server, once for each
/// connection count; returns markdown. Call it from an unpinned thread.
pub fn report(
    messages: u64,
    size: usize,
    connections: &[usize],
    load_core: usize,
    machine: &str,
) -> io::Result<String> {
    if messages == 0 || size == 0 || connections.contains(&0) {
        return Err(io::Error::other(
            "--messages, --size and --connections must be at least 1",
        ));
    }
    let perf = perf_works();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Syscalls per echoed message, server side, {messages} messages of {size} B in a closed loop, {machine}. `perf` counts in the Linux kernel without stopping the server (the figures to compare); `strace -c -f` stops it at every syscall, which changes what its reads find{}.\n",
        if perf { "" } else { " (perf was not usable here: strace only)" }
    );
    for &conns in connections {
        let plan = Plan {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            size,
            connections: conns,
            mode: Mode::Closed,
            warmup: Duration::ZERO,
            measure: Duration::from_secs(3600),
            messages: Some(messages),
        };
        let _ = writeln!(md, "{conns} connection(s):\n");
        let _ = writeln!(
            md,
            "| server | perf: total | perf: by syscall | strace: total | strace: busiest |"
        );
        let _ = writeln!(md, "| --- | ---: | --- | ---: | --- |");
        for (n, server) in Server::ALL.into_iter().enumerate() {
            let port = 17_100 + 2 * n as u16 + (std::process::id() % 1000) as u16 * 16;
            let per_message = |c: &Option<Count>, echoed: u64, names: usize| match c {
                None => ("-".to_string(), "not usable".to_string()),
                Some(c) => {
                    let per = |calls: u64| calls as f64 / echoed as f64;
                    let busiest: Vec<String> = c
                        .by_name
                        .iter()
                        .filter(|(_, calls)| per(*calls) >= 0.005)
                        .take(names)
                        .map(|(name, calls)| format!("{name} {:.2}", per(*calls)))
                        .collect();
                    (format!("{:.2}", per(c.total)), busiest.join(", "))
                }
            };
            let (perf_total, perf_names) = if perf {
                let (c, echoed) = count(Counter::Perf, server, port, &plan, load_core)?;
                per_message(&c, echoed, PERF_NAMES.len())
            } else {
                ("-".to_string(), "not usable".to_string())
            };
            let (c, echoed) = count(Counter::Strace, server, port + 1, &plan, load_core)?;
            let (strace_total, strace_names) = per_message(&c, echoed, 4);
            let _ = writeln!(
                md,
                "| {} | {perf_total} | {perf_names} | {strace_total} | {strace_names} |",
                server.name()
            );
        }
        md.push('\n');
    }
    Ok(md)
}

/// Checks both parsers against summaries captured from a real run (a
/// trapline server under `strace -c -f` and under `perf stat`, 20,000
/// echoes), so a change of either tool's format, or of the accounting,
/// shows under `cargo test` even where neither tool is installed.
pub fn check_parsers() -> io::Result<()> {
    let strace = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ------------------
 27.94    0.374232          18     20001         1 sendto
 11.32    0.151643          10     14105           epoll_wait
  5.17    0.069238           2     34004     14003 recvfrom
  0.00    0.000019           2         7           close
------ ----------- ----------- --------- --------- ------------------
100.00    1.339324          19     68117     14004 total
";
    let c = parse_strace(strace);
    let names: Vec<(&str, u64)> = c.by_name.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    if c.total != 68_117
        || names
            != [
                ("recvfrom", 34_004),
                ("sendto", 20_001),
                ("epoll_wait", 14_105),
                ("close", 7),
            ]
    {
        return Err(io::Error::other(format!(
            "strace summary misread: total {}, {names:?}",
            c.total
        )));
    }
    let perf = "\
# started on Sun Nov 22 06:29:50 2026

43329,,raw_syscalls:sys_enter,294668095,100.00,,
21594,,syscalls:sys_enter_recvfrom,294668095,100.00,,
10801,,syscalls:sys_enter_sendto,294668095,100.00,,
10804,,syscalls:sys_enter_epoll_wait,294668095,100.00,,
";
    let c = parse_perf(perf).ok_or_else(|| io::Error::other("perf output misread"))?;
    let names: Vec<(&str, u64)> = c.by_name.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    if c.total != 43_329
        || names
            != [
                ("recvfrom", 21_594),
                ("epoll_wait", 10_804),
                ("sendto", 10_801),
            ]
    {
        return Err(io::Error::other(format!(
            "perf output misread: total {}, {names:?}",
            c.total
        )));
    }
    if parse_perf("<not supported>,,raw_syscalls:sys_enter,0,100.00,,\n").is_some() {
        return Err(io::Error::other(
            "an unsupported perf counter passed for a count",
        ));
    }
    Ok(())
}
