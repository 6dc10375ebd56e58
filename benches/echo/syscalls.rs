//! Syscalls per echoed message, counted by `strace -c -f`.
//!
//! Each server runs in a child process (this binary with `--serve`) under
//! `strace -c -f`; the load generator sends exactly `messages` messages in a
//! closed loop, then the server's stdin is closed, which ends it, and
//! strace's summary is parsed. The count
//! includes the child's start-up (a few hundred syscalls), which 100,000
//! messages make negligible. Counts do not care how noisy the machine is.

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::load::{self, Mode, Plan};
use crate::servers::Server;

/// The syscalls of one server over one load.
struct Count {
    total: u64,
    /// (name, calls), busiest first.
    by_name: Vec<(String, u64)>,
}

fn parse(summary: &str) -> Count {
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

/// The syscalls of `server` under `plan`, and how many echoes they served.
fn count(server: Server, port: u16, plan: &Plan) -> io::Result<(Count, u64)> {
    let out = std::env::temp_dir().join(format!("trapline-echo-strace-{}-{port}", server.name()));
    let mut child = Command::new("strace")
        .arg("-c")
        .arg("-f")
        .arg("-o")
        .arg(&out)
        .arg(std::env::current_exe()?)
        .args(["--serve", server.name(), "--port", &port.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::other(format!("strace: {e} (is strace installed?)")))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut tries = 0;
    while TcpStream::connect(addr).is_err() {
        tries += 1;
        if tries > 200 {
            drop(child.stdin.take());
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "{} never listened on {addr}",
                server.name()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let outcome = load::run(&Plan { addr, ..*plan });
    // Closing its stdin ends the server; strace sees it exit and sums up.
    drop(child.stdin.take());
    child.wait()?;
    let summary = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_file(&out);
    let outcome = outcome?;
    // The last read can complete a few echoes past the count.
    if outcome.messages < plan.messages.unwrap_or(0) {
        return Err(io::Error::other("the load ended early"));
    }
    Ok((parse(&summary), outcome.messages))
}

/// Counts syscalls per echoed message for every server; returns markdown.
pub fn report(messages: u64, size: usize, connections: usize) -> io::Result<String> {
    let plan = Plan {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        size,
        connections,
        mode: Mode::Closed,
        warmup: Duration::ZERO,
        measure: Duration::from_secs(3600),
        messages: Some(messages),
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Syscalls per echoed message, server side (`strace -c -f`, {messages} messages of {size} B, {connections} connection(s), closed loop):\n"
    );
    let _ = writeln!(md, "| server | total | busiest syscalls (per message) |");
    let _ = writeln!(md, "| --- | ---: | --- |");
    for (n, server) in Server::ALL.into_iter().enumerate() {
        let port = 17_100 + n as u16 + (std::process::id() % 1000) as u16 * 4;
        let (count, echoed) = count(server, port, &plan)?;
        let per = |calls: u64| calls as f64 / echoed as f64;
        let busiest: Vec<String> = count
            .by_name
            .iter()
            .take(4)
            .map(|(name, calls)| format!("{name} {:.2}", per(*calls)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {:.2} | {} |",
            server.name(),
            per(count.total),
            busiest.join(", ")
        );
    }
    Ok(md)
}
