//! The load generator: many connections on one mio loop, on its own core.
//!
//! Two ways to load a server:
//!
//! - **Closed loop**: every connection has one message in flight; when its
//!   echo is back, it sends the next. This finds the server's throughput.
//! - **Open loop**: messages leave on a fixed schedule (message `m` is due at
//!   `start + m / rate`, on connection `m % connections`) whether or not the
//!   earlier echoes are back, and latency is counted from the *intended* send
//!   time, as wrk2 does. A server that stalls makes every message due during
//!   the stall late, and the histogram sees all of them.
//!
//! Discussion: `epoll_wait` takes whole milliseconds, so a generator that
//! slept until the next send time would send in 1 ms bursts and charge the
//! server for its own lateness. When a send is due within 2 ms the generator
//! spins on `epoll_wait(0)` instead: its core does nothing else.
//!
//! Every echoed byte is checked against what was sent.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

/// How a run loads the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// One message in flight per connection.
    Closed,
    /// `rate` messages per second in all, on a fixed schedule.
    Open { rate: f64 },
}

/// One run: where, what, how long.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub addr: SocketAddr,
    pub size: usize,
    pub connections: usize,
    pub mode: Mode,
    /// Not measured: lets connections and caches settle.
    pub warmup: Duration,
    /// Measured.
    pub measure: Duration,
    /// Stop after this many measured messages (closed loop only), if given.
    pub messages: Option<u64>,
}

/// What a run saw.
#[derive(Debug)]
pub struct Outcome {
    /// Echoes completed inside the measured window.
    pub messages: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Round-trip latency of those echoes, in nanoseconds.
    pub latency: Histogram<u64>,
}

/// A new, empty latency histogram (1 ns to 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

struct Conn {
    stream: mio::net::TcpStream,
    /// When each message in flight was (meant to be) sent, oldest first.
    sent_at: VecDeque<Instant>,
    /// Bytes queued for sending and not yet written.
    owed: usize,
    written: u64,
    received: u64,
}

/// The byte at offset `i` of every message.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Connects `n` clients to `addr`: nodelay, and linger 0 so that closing them
/// leaves no `TIME_WAIT` behind across the many runs of a bench.
pub fn connect(addr: SocketAddr, n: usize) -> io::Result<Vec<mio::net::TcpStream>> {
    (0..n)
        .map(|_| {
            let stream = std::net::TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
            stream.set_nonblocking(true)?;
            Ok(mio::net::TcpStream::from_std(stream))
        })
        .collect()
}

/// Runs `plan` against its server.
pub fn run(plan: &Plan) -> io::Result<Outcome> {
    let mut poll = Poll::new()?;
    let mut conns: Vec<Conn> = connect(plan.addr, plan.connections)?
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| {
            poll.registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map(|()| Conn {
                    stream,
                    sent_at: VecDeque::new(),
                    owed: 0,
                    written: 0,
                    received: 0,
                })
        })
        .collect::<io::Result<_>>()?;
    let message: Vec<u8> = (0..plan.size).map(pattern).collect();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut latency = histogram();
    let mut messages = 0u64;

    let start = Instant::now();
    let window = start + plan.warmup;
    let end = window + plan.measure;
    let mut next = 0u64; // the next scheduled message (open loop)
    let mut dirty: Vec<usize> = Vec::new();
    if plan.mode == Mode::Closed {
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.sent_at.push_back(start);
            conn.owed += plan.size;
            dirty.push(i);
        }
    }
    let mut sending = true;
    let drain_limit = end + Duration::from_secs(2);
    loop {
        let now = Instant::now();
        if sending && (now >= end || plan.messages.is_some_and(|m| messages >= m)) {
            sending = false;
        }
        let in_flight = conns.iter().any(|c| !c.sent_at.is_empty());
        if !sending && (plan.mode == Mode::Closed || !in_flight || now >= drain_limit) {
            break;
        }
        let mut timeout = if sending {
            end - now
        } else {
            drain_limit - now
        };
        if let (Mode::Open { rate }, true) = (plan.mode, sending) {
            loop {
                let due = start + Duration::from_secs_f64(next as f64 / rate);
                if due > now {
                    let wait = due - now;
                    timeout = if wait > Duration::from_millis(2) {
                        wait - Duration::from_millis(1)
                    } else {
                        Duration::ZERO
                    };
                    break;
                }
                let i = (next % conns.len() as u64) as usize;
                conns[i].sent_at.push_back(due);
                conns[i].owed += plan.size;
                dirty.push(i);
                next += 1;
            }
        }
        for i in dirty.drain(..) {
            flush(&mut conns[i], &message)?;
        }
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            // A signal: nothing happened.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            let i = event.token().0;
            let conn = &mut conns[i];
            if event.is_writable() && conn.owed > 0 {
                flush(conn, &message)?;
            }
            if !event.is_readable() {
                continue;
            }
            loop {
                let n = match conn.stream.read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("the server closed a connection")),
                    Ok(n) => n,
                    // Drained.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // A signal: read again.
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                let done = Instant::now();
                for (k, &byte) in buf[..n].iter().enumerate() {
                    let at = ((conn.received + k as u64) % plan.size as u64) as usize;
                    if byte != pattern(at) {
                        return Err(io::Error::other(format!(
                            "connection {i}: byte {} of a message came back as {byte}, sent {}",
                            at,
                            pattern(at)
                        )));
                    }
                }
                let before = conn.received / plan.size as u64;
                conn.received += n as u64;
                let after = conn.received / plan.size as u64;
                for _ in before..after {
                    let sent = conn
                        .sent_at
                        .pop_front()
                        .ok_or_else(|| io::Error::other("an echo nobody sent"))?;
                    if sent >= window && sent < end {
                        let ns = done.saturating_duration_since(sent).as_nanos() as u64;
                        latency.saturating_record(ns.max(1));
                        messages += 1;
                    }
                    if plan.mode == Mode::Closed && sending {
                        conn.sent_at.push_back(done);
                        conn.owed += plan.size;
                    }
                }
                if conn.owed > 0 {
                    flush(conn, &message)?;
                }
                if n < buf.len() {
                    break; // a short read: drained
                }
            }
        }
    }
    let elapsed = match plan.messages {
        Some(_) => Instant::now().saturating_duration_since(window),
        None => plan.measure,
    };
    Ok(Outcome {
        messages,
        elapsed,
        latency,
    })
}

/// Writes what `conn` owes until the socket would block.
fn flush(conn: &mut Conn, message: &[u8]) -> io::Result<()> {
    while conn.owed > 0 {
        let at = (conn.written % message.len() as u64) as usize;
        let len = (message.len() - at).min(conn.owed);
        match conn.stream.write(&message[at..at + len]) {
            Ok(n) => {
                conn.owed -= n;
                conn.written += n as u64;
            }
            // The send buffer is full: the writable edge resumes it.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // A signal: write again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
