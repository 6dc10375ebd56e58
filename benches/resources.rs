//! What a task and a connection cost in memory, and how late a timer fires:
//! trapline beside tokio current_thread.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench resources
//! ```
//!
//! - **Memory per sleeping task**: spawn 1,000,000 tasks that each sleep an
//!   hour, wait until every one of them has been polled (and so reached its
//!   sleep), and divide the growth of the process's resident memory
//!   (`/proc/self/statm`) by the count.
//! - **Memory per idle TCP connection**: accept 10,000 connections, each
//!   served by a task waiting in `read` with a 64-byte buffer, and divide the
//!   growth the same way. The client ends live in the parent process, so
//!   only the server side is counted. Resident memory is the process's own
//!   pages: a socket's buffers and its epoll entry are the Linux kernel's
//!   memory, the same for both runtimes, and not in it.
//!
//! Both runtimes get the same futures (a bare sleep; an `async` block with a
//! 64-byte buffer around one read), each wrapped in [`Counted`], which adds
//! no bytes.
//! - **Timer lateness**: how long after its deadline `sleep(100 µs)` and
//!   `sleep(1 ms)` return, p50 to max over many sleeps, beside two bare
//!   `timerfd` loops that show the machine's own floor, with the CPU each
//!   sleeper burns (`resources/lateness.rs`).
//!
//! `-- --memory` or `-- --timers` runs only that half. Memory goes to
//! `benches/results/resources.md`, timers to `benches/results/timers.md`, each
//! opening with the machine it ran on. The TCP figure needs one open file per
//! connection in each process: the bench raises its soft limit itself, up to
//! the hard limit, and says so if the hard limit is too low.
//!
//! Discussion: resident memory never shrinks back reliably (the allocator
//! keeps what it was given), so each memory figure comes from a fresh child
//! process: this binary run again with `--child`. Run any other way than
//! `cargo bench` (as `cargo test` does) it uses small counts and writes under
//! `target/`.

use std::future::Future;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[path = "resources/lateness.rs"]
mod lateness;
#[path = "common/machine.rs"]
mod machine;
#[path = "common/reaped.rs"]
mod reaped;

use reaped::Reaped;

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(1) as u64
}

const HOUR: Duration = Duration::from_secs(3600);
/// How often the children look whether every task has been polled.
const SETTLE: Duration = Duration::from_millis(10);
/// How long they look before giving up.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// Polls of [`Counted`] futures so far, in this process.
static POLLED: AtomicUsize = AtomicUsize::new(0);

pin_project_lite::pin_project! {
    /// A future that counts its polls: a child measures once every task has
    /// been polled, so each one holds what its first trap (or registration)
    /// made. Same size as the future it wraps.
    struct Counted<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        POLLED.fetch_add(1, Ordering::Relaxed);
        self.project().inner.poll(cx)
    }
}

fn counted<F: Future>(inner: F) -> Counted<F> {
    Counted { inner }
}

/// Whether the children should stop waiting: every task has been polled,
/// or the limit passed (an error then).
fn settled(n: usize, started: Instant) -> io::Result<bool> {
    let polled = POLLED.load(Ordering::Relaxed);
    if polled >= n {
        return Ok(true);
    }
    if started.elapsed() > SETTLE_LIMIT {
        return Err(io::Error::other(format!(
            "only {polled} of {n} tasks polled after {SETTLE_LIMIT:?}"
        )));
    }
    Ok(false)
}

/// Child: `n` sleeping tasks; prints bytes per task.
fn tasks_child(runtime: &str, n: usize) -> io::Result<()> {
    match runtime {
        "trapline" => trapline::run(async move {
            let before = rss();
            for _ in 0..n {
                drop(trapline::spawn(counted(trapline::sleep(HOUR)))?);
            }
            let started = Instant::now();
            while !settled(n, started)? {
                trapline::sleep(SETTLE).await?;
            }
            println!("{}", rss().saturating_sub(before) as f64 / n as f64);
            std::process::exit(0)
        })?,
        "tokio" => tokio_runtime()?.block_on(async move {
            let before = rss();
            for _ in 0..n {
                drop(tokio::spawn(counted(tokio::time::sleep(HOUR))));
            }
            let started = Instant::now();
            while !settled(n, started)? {
                tokio::time::sleep(SETTLE).await;
            }
            println!("{}", rss().saturating_sub(before) as f64 / n as f64);
            std::process::exit(0)
        }),
        other => Err(io::Error::other(format!("no runtime called {other}"))),
    }
}

/// Child: accepts `n` connections, each held by a task waiting in `read`;
/// prints its port first, then bytes per connection.
fn tcp_child(runtime: &str, n: usize) -> io::Result<()> {
    raise_fd_limit(n as u64 + 64)?;
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    match runtime {
        "trapline" => trapline::run(async move {
            let listener = trapline::net::TcpListener::bind_with_backlog(any, 4096)?;
            println!("{}", listener.local_addr()?.port());
            let before = rss();
            for _ in 0..n {
                let (stream, _) = listener.accept().await?;
                drop(trapline::spawn(counted(async move {
                    let mut buf = [0u8; 64];
                    stream.read(&mut buf).await
                }))?);
            }
            let started = Instant::now();
            while !settled(n, started)? {
                trapline::sleep(SETTLE).await?;
            }
            println!("{}", rss().saturating_sub(before) as f64 / n as f64);
            std::process::exit(0)
        })?,
        "tokio" => tokio_runtime()?.block_on(async move {
            use tokio::io::AsyncReadExt;
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(any)?;
            let listener = socket.listen(4096)?;
            println!("{}", listener.local_addr()?.port());
            let before = rss();
            for _ in 0..n {
                let (mut stream, _) = listener.accept().await?;
                drop(tokio::spawn(counted(async move {
                    let mut buf = [0u8; 64];
                    stream.read(&mut buf).await
                })));
            }
            let started = Instant::now();
            while !settled(n, started)? {
                tokio::time::sleep(SETTLE).await;
            }
            println!("{}", rss().saturating_sub(before) as f64 / n as f64);
            std::process::exit(0)
        }),
        other => Err(io::Error::other(format!("no runtime called {other}"))),
    }
}

fn tokio_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs this binary as a child measuring `what`; returns bytes per item.
fn measure_in_child(what: &str, runtime: &str, n: usize) -> io::Result<f64> {
    let mut child = Reaped(
        Command::new(std::env::current_exe()?)
            .args(["--child", what, runtime, &n.to_string()])
            .stdout(Stdio::piped())
            .spawn()?,
    );
    let mut lines = BufReader::new(child.0.stdout.take().expect("piped")).lines();
    let mut next = || -> io::Result<String> {
        lines.next().unwrap_or_else(|| {
            Err(io::Error::other(format!(
                "{what} {runtime}: child said nothing"
            )))
        })
    };
    let mut clients = Vec::new();
    if what == "tcp" {
        let port: u16 = next()?.trim().parse().map_err(io::Error::other)?;
        for _ in 0..n {
            clients.push(TcpStream::connect(("127.0.0.1", port))?);
        }
    }
    let answer = next()?;
    let status = child.0.wait()?;
    drop(clients);
    if !status.success() {
        return Err(io::Error::other(format!(
            "{what} {runtime}: child failed: {status}"
        )));
    }
    answer.trim().parse().map_err(io::Error::other)
}

/// Raises this process's soft limit on open files to at least `need` (its
/// children inherit it), up to the hard limit; a hard limit below `need` is
/// an error that says what to do.
fn raise_fd_limit(need: u64) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit the call writes into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= need {
        return Ok(());
    }
    if lim.rlim_max < need {
        return Err(io::Error::other(format!(
            "{need} open files are needed and the hard limit is {}: raise it (`ulimit -Hn {need}` as root, or LimitNOFILE) and run again",
            lim.rlim_max
        )));
    }
    let raised = libc::rlimit {
        rlim_cur: need,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit the call only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    eprintln!("raised the open-file limit from {} to {need}", lim.rlim_cur);
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        // A child outlives nothing: if the parent dies, so does it.
        // SAFETY: prctl with these arguments only sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let what = args.get(at + 1).map_or("", String::as_str);
        let runtime = args.get(at + 2).map_or("", String::as_str);
        let n: usize = args
            .get(at + 3)
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| io::Error::other("--child WHAT RUNTIME COUNT"))?;
        return match what {
            "tasks" => tasks_child(runtime, n),
            "tcp" => tcp_child(runtime, n),
            other => Err(io::Error::other(format!("--child: nothing called {other}"))),
        };
    }
    let full = args.iter().any(|a| a == "--bench");
    // `--memory` or `--timers` runs only that half; neither runs both.
    let memory = !args.iter().any(|a| a == "--timers");
    let timers = !args.iter().any(|a| a == "--memory");
    let (tasks, conns, sleeps, out) = if full {
        (1_000_000, 10_000, 4_000, "benches/results")
    } else {
        (10_000, 200, 20, "target/bench-results")
    };
    let machine = machine::machine();
    std::fs::create_dir_all(out)?;
    if memory {
        // The parent holds one end of each connection and the child the
        // other: each process needs one fd a connection, beside its own few.
        raise_fd_limit(conns as u64 + 1024)?;
        let mut md = format!(
            "Memory, resident bytes per item ({}), {machine}:\n\n| item | trapline | tokio current_thread | trapline / tokio |\n| --- | ---: | ---: | ---: |\n",
            if full { "full" } else { "quick" }
        );
        for (what, label, n) in [
            ("tasks", format!("sleeping task ({tasks})"), tasks),
            ("tcp", format!("idle TCP connection ({conns})"), conns),
        ] {
            let ours = measure_in_child(what, "trapline", n)?;
            let theirs = measure_in_child(what, "tokio", n)?;
            md.push_str(&format!(
                "| {label} | {ours:.0} | {theirs:.0} | {:.2} |\n",
                ours / theirs.max(1.0)
            ));
        }
        println!("{md}");
        std::fs::write(format!("{out}/resources.md"), md)?;
    }
    if timers {
        let mut runs = Vec::new();
        for (d, label) in [
            (Duration::from_micros(100), "100 µs"),
            (Duration::from_millis(1), "1 ms"),
        ] {
            runs.push((label, lateness::measure(d, sleeps, 10)?));
        }
        let md = format!(
            "Timers ({}), {machine}.\n\n{}",
            if full { "full" } else { "quick" },
            lateness::table(&runs, sleeps)
        );
        println!("{md}");
        std::fs::write(format!("{out}/timers.md"), md)?;
    }
    Ok(())
}
