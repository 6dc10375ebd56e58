//! How late a sleep ends: trapline beside tokio, and beside two bare loops
//! that show what the machine itself allows.
//!
//! Each sleeper sleeps `d` many times in a row; a sample is how long after
//! its deadline (`start + d`, `start` read just before the sleep) the sleeper
//! saw the clock again. The sleepers:
//!
//! - **trapline**: `trapline::sleep(d)` on a kernel;
//! - **tokio**: `tokio::time::sleep(d)` on a current_thread runtime;
//! - **timerfd + spin**: no runtime at all, the kernel's technique
//!   (`kernel/src/timerfd.rs`) written bare with the spin fixed at 50 µs
//!   (the kernel learns its spin, starting there): a `timerfd` armed [`SPIN`]
//!   before the deadline, `epoll_wait` until it fires, then `epoll_wait(0)`
//!   until the deadline. What is left here is the machine (waking the
//!   thread, preemption by other load), not a runtime;
//! - **timerfd, blocking**: the same without the spin, `epoll_wait` until a
//!   `timerfd` armed for the deadline itself fires: what waking a blocked
//!   thread costs on this machine, the reason for the spin.
//!
//! Principles: the sleepers take turns in rounds (a slice of the samples
//! each, in rotated order), so a burst of load from elsewhere falls on all of
//! them; and each reports the CPU its thread used over its wall time, so the
//! price of spinning is a figure, not a guess.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

/// How early the bare loop's timer fires before a deadline (where the
/// kernel's learned spin starts).
pub const SPIN: Duration = Duration::from_micros(50);

/// One way to sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sleeper {
    Trapline,
    Tokio,
    TimerfdSpin,
    TimerfdBlock,
}

impl Sleeper {
    pub const ALL: [Sleeper; 4] = [
        Sleeper::Trapline,
        Sleeper::Tokio,
        Sleeper::TimerfdSpin,
        Sleeper::TimerfdBlock,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Sleeper::Trapline => "trapline",
            Sleeper::Tokio => "tokio current_thread",
            Sleeper::TimerfdSpin => "bare timerfd, 50 µs early + spin (floor)",
            Sleeper::TimerfdBlock => "bare timerfd, blocking",
        }
    }
}

/// What one sleeper saw over all its samples.
#[derive(Debug)]
pub struct Lateness {
    /// Nanoseconds after the deadline.
    pub late: Histogram<u64>,
    /// The same, less the time the thread spent runnable but waiting for a
    /// CPU during that sleep (see [`RunQueue`]): what is left when the
    /// scheduler's delays are taken out.
    pub unqueued: Histogram<u64>,
    /// CPU time its thread used while sleeping.
    pub cpu: Duration,
    /// Wall time of the same stretches.
    pub wall: Duration,
}

impl Lateness {
    fn new() -> Lateness {
        Lateness {
            late: Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds"),
            unqueued: Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds"),
            cpu: Duration::ZERO,
            wall: Duration::ZERO,
        }
    }

    /// One sample: the sleep ended now, for `deadline`; `queued_since` is the
    /// run-queue wait read before the sleep began.
    fn record(&mut self, deadline: Instant, queue: &RunQueue, queued_since: u64) {
        let late = Instant::now()
            .saturating_duration_since(deadline)
            .as_nanos() as u64;
        let queued = queue.waited().saturating_sub(queued_since);
        self.late.saturating_record(late.max(1));
        self.unqueued
            .saturating_record(late.saturating_sub(queued).max(1));
    }

    /// Microseconds late at quantile `q`.
    pub fn us(&self, q: f64) -> f64 {
        self.late.value_at_quantile(q) as f64 / 1e3
    }

    /// Microseconds late at quantile `q`, the run-queue wait taken out.
    pub fn unqueued_us(&self, q: f64) -> f64 {
        self.unqueued.value_at_quantile(q) as f64 / 1e3
    }

    /// The share of the wall time its thread was on a CPU, in percent.
    pub fn cpu_percent(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// How long the calling thread has waited, runnable, for a CPU: the second
/// figure of `/proc/thread-self/schedstat` (the scheduler's `run_delay`, in
/// nanoseconds). A sleep that ends on time in the kernel's timer but finds
/// its CPU busy with another process waits here; a thread that is late for
/// any other reason does not. Where the file cannot be read, it reads 0 and
/// takes nothing out.
struct RunQueue(Option<std::fs::File>);

impl RunQueue {
    /// For the calling thread: every sample must be read on the thread that
    /// opened it.
    fn open() -> RunQueue {
        RunQueue(std::fs::File::open("/proc/thread-self/schedstat").ok())
    }

    fn waited(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        let Some(file) = &self.0 else { return 0 };
        let mut buf = [0u8; 96];
        let n = file.read_at(&mut buf, 0).unwrap_or(0);
        std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
    }
}

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec the call writes into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `count` sleeps of `d` by every sleeper, taking turns over `rounds`.
pub fn measure(d: Duration, count: usize, rounds: usize) -> io::Result<Vec<(Sleeper, Lateness)>> {
    let mut all: Vec<(Sleeper, Lateness)> =
        Sleeper::ALL.iter().map(|&s| (s, Lateness::new())).collect();
    let rounds = rounds.clamp(1, count.max(1));
    let mut bare = BareTimer::new()?;
    let queue = RunQueue::open();
    for round in 0..rounds {
        let slice = count / rounds + usize::from(round < count % rounds);
        let turn = round % all.len();
        for k in 0..all.len() {
            let (sleeper, lateness) = &mut all[(k + turn) % Sleeper::ALL.len()];
            let (cpu, wall) = (thread_cpu(), Instant::now());
            match sleeper {
                Sleeper::Trapline => trapline::run(async {
                    for _ in 0..slice {
                        let queued = queue.waited();
                        let deadline = Instant::now() + d;
                        trapline::sleep(d).await?;
                        lateness.record(deadline, &queue, queued);
                    }
                    Ok::<(), io::Error>(())
                })??,
                Sleeper::Tokio => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(async {
                        for _ in 0..slice {
                            let queued = queue.waited();
                            let deadline = Instant::now() + d;
                            tokio::time::sleep(d).await;
                            lateness.record(deadline, &queue, queued);
                        }
                    }),
                Sleeper::TimerfdSpin => {
                    for _ in 0..slice {
                        let queued = queue.waited();
                        let deadline = Instant::now() + d;
                        bare.sleep_until(deadline, SPIN)?;
                        lateness.record(deadline, &queue, queued);
                    }
                }
                Sleeper::TimerfdBlock => {
                    for _ in 0..slice {
                        let queued = queue.waited();
                        let deadline = Instant::now() + d;
                        bare.sleep_until(deadline, Duration::ZERO)?;
                        lateness.record(deadline, &queue, queued);
                    }
                }
            }
            lateness.cpu += thread_cpu().saturating_sub(cpu);
            lateness.wall += wall.elapsed();
        }
    }
    Ok(all)
}

/// A `timerfd` on its own `epoll` (through mio), with no runtime around it.
struct BareTimer {
    poll: Poll,
    events: Events,
    fd: OwnedFd,
}

impl BareTimer {
    fn new() -> io::Result<BareTimer> {
        // SAFETY: timerfd_create takes no pointers; the result is checked.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&fd.as_raw_fd()), Token(0), Interest::READABLE)?;
        Ok(BareTimer {
            poll,
            events: Events::with_capacity(4),
            fd,
        })
    }

    /// Blocks until `spin` before `deadline` (on the timerfd), then polls
    /// without blocking until the deadline.
    fn sleep_until(&mut self, deadline: Instant, spin: Duration) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left > spin {
            self.arm(left - spin)?;
            loop {
                match self.poll.poll(&mut self.events, None) {
                    Ok(()) if !self.events.is_empty() => break,
                    Ok(()) => {}
                    // A signal: wait again.
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let mut ticks = [0u8; 8];
            // SAFETY: reads at most 8 bytes into `ticks`, which has 8.
            unsafe { libc::read(self.fd.as_raw_fd(), ticks.as_mut_ptr().cast(), 8) };
        }
        while Instant::now() < deadline {
            match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
                Ok(()) => {}
                // A signal: poll again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn arm(&self, after: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` lives across the call; the old value is not asked for.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The lateness table of one run: every sleeper, both durations.
pub fn table(runs: &[(&str, Vec<(Sleeper, Lateness)>)], count: usize) -> String {
    let mut md = format!(
        "Timer lateness, µs after the deadline ({count} sleeps of each duration by each sleeper, taking turns in rounds); \"p99 less run-queue wait\" takes out of each sample the time its thread sat runnable waiting for a CPU taken by another process (`run_delay` in `/proc/thread-self/schedstat`); CPU is the share of the wall time the sleeping thread was on a CPU:\n\n"
    );
    md.push_str("| sleep | sleeper | p50 | p99 | p99.9 | max | p99 less run-queue wait | CPU |\n");
    md.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (label, run) in runs {
        for (sleeper, l) in run {
            md.push_str(&format!(
                "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0}% |\n",
                sleeper.label(),
                l.us(0.5),
                l.us(0.99),
                l.us(0.999),
                l.us(1.0),
                l.unqueued_us(0.99),
                l.cpu_percent()
            ));
        }
    }
    md.push_str("\np99 ratios, same run:\n\n| sleep | tokio / trapline | trapline / floor |\n| --- | ---: | ---: |\n");
    for (label, run) in runs {
        let p99 = |s: Sleeper| {
            run.iter()
                .find(|(x, _)| *x == s)
                .map_or(f64::NAN, |(_, l)| l.us(0.99).max(0.001))
        };
        md.push_str(&format!(
            "| {label} | {:.1} | {:.2} |\n",
            p99(Sleeper::Tokio) / p99(Sleeper::Trapline),
            p99(Sleeper::Trapline) / p99(Sleeper::TimerfdSpin)
        ));
    }
    md
}
