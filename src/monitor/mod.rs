//! The monitor: look inside a running kernel with `nc`.
//!
//! ```text
//! $ TRAPLINE_MONITOR=1 cargo run --example echo_server
//! $ nc 127.0.0.1 48802
//! trapline monitor: 4 task(s); type help
//! trapline > ps
//! ID  NAME                  STATE    POLLS  PARKED  TRAPS
//!  1  main                  parked       2  1.00s   ReadWait(fd 7)
//!  2  monitor               parked       2  47us    ReadWait(fd 6)
//!  3  conn 127.0.0.1:42462  parked       1  1.00s   ReadWait(fd 8)
//!  4  monitor client        running      1  -       -
//! trapline > where 3
//! task 3 "conn 127.0.0.1:42462"
//!   spawned at examples/echo_server.rs:82:14 by task 1
//!   parked on ReadWait(fd 8) at examples/echo_server.rs:55:24
//! ```
//!
//! Principles:
//!
//! - **Opt-in, and free when off.** No monitor, no hooks: the kernel checks
//!   one empty list per poll. A monitor is switched on by the environment
//!   (`TRAPLINE_MONITOR`, read by [`crate::run`]) or in code ([`Monitor`]).
//! - **Loopback only.** `cancel` is a command: the monitor refuses any address
//!   that is not a loopback one.
//! - **Built like everything else.** It watches through the kernel's
//!   activation hooks (a board of tasks, `board`) and a read-only probe for
//!   the counts, and it serves with trapline's own sockets, as ordinary tasks
//!   (`server`). Its one action, `cancel`, is the `Cancel` trap.
//! - **Plain text.** One command a line; every answer ends with the prompt
//!   `trapline > `; every mistake gets one line starting `error:` (`commands`).
//! - **Bounded.** Lines of 1024 bytes at most, eight connections at once: a
//!   person typing never meets either, and a script gone wrong cannot make
//!   the monitor grow the kernel it watches.
//!
//! The commands: `ps` (every task: id, name, state, polls, time parked, the
//! traps it waits under), `where ID` (the source line of each await the task
//! is parked at, captured with `#[track_caller]`, and the line it was spawned
//! at), `cancel ID`, `stats` (the kernel's counts, parks by trap kind),
//! `help`, `quit`.

mod board;
mod commands;
mod server;

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use trapline_kernel::{Builder, Kernel, Probe};

use board::Board;
use server::serve;

/// The address the monitor listens on unless told otherwise.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 48802);

/// The environment variable [`crate::run`] reads to start a monitor.
///
/// Unset, empty, `0` or `off`: no monitor. `1` or `on`: [`DEFAULT_ADDR`]. A
/// port (`48803`): that port on 127.0.0.1. An address (`[::1]:9000`): that
/// address, which must be a loopback one.
///
/// One address serves one kernel: when it is taken (a program that runs a
/// kernel on each of several threads, or another program), `trapline::run`
/// logs a warning and runs that kernel without a monitor.
pub const ENV_VAR: &str = "TRAPLINE_MONITOR";

/// A monitor for one kernel: the hooks that keep its board, and the address
/// it will listen on.
///
/// # Examples
///
/// A program that runs its kernel with a monitor on a free port:
///
/// ```no_run
/// use std::time::Duration;
/// use trapline::monitor::Monitor;
///
/// let monitor = Monitor::new("127.0.0.1:0".parse().unwrap())?;
/// let mut kernel = monitor.build(trapline::Builder::new())?;
/// kernel.run(async {
///     let addr = monitor.start()?;
///     println!("nc {} {}", addr.ip(), addr.port());
///     trapline::sleep(Duration::from_secs(60)).await?;
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Monitor {
    addr: SocketAddr,
    board: Rc<Board>,
    probe: Rc<RefCell<Option<Probe>>>,
}

fn refuse(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

impl Monitor {
    /// A monitor that will listen on `addr`, which must be a loopback
    /// address (port 0 picks a free port).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::monitor::Monitor;
    ///
    /// assert!(Monitor::new("127.0.0.1:48802".parse().unwrap()).is_ok());
    /// let refused = Monitor::new("0.0.0.0:48802".parse().unwrap()).unwrap_err();
    /// assert_eq!(
    ///     refused.to_string(),
    ///     "trapline monitor: 0.0.0.0:48802 is not a loopback address; it listens on loopback only"
    /// );
    /// ```
    pub fn new(addr: SocketAddr) -> io::Result<Monitor> {
        if !addr.ip().is_loopback() {
            return Err(refuse(format!(
                "trapline monitor: {addr} is not a loopback address; it listens on loopback only"
            )));
        }
        Ok(Monitor {
            addr,
            board: Rc::new(Board::default()),
            probe: Rc::new(RefCell::new(None)),
        })
    }

    /// The monitor [`ENV_VAR`] asks for, if it asks for one.
    ///
    /// # Examples
    ///
    /// ```
    /// // Unset here, as in the test suite: no monitor.
    /// assert!(trapline::monitor::Monitor::from_env()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_env() -> io::Result<Option<Monitor>> {
        let Some(value) = std::env::var_os(ENV_VAR) else {
            return Ok(None);
        };
        let value = value
            .into_string()
            .map_err(|_| refuse(format!("{ENV_VAR} is not UTF-8 text")))?;
        match setting(&value)? {
            None => Ok(None),
            Some(addr) => Monitor::new(addr).map(Some),
        }
    }

    /// The address it was asked to listen on.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::monitor::{Monitor, DEFAULT_ADDR};
    ///
    /// assert_eq!(Monitor::new(DEFAULT_ADDR)?.addr(), DEFAULT_ADDR);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Builds a kernel from `builder` with this monitor's hooks installed.
    /// One monitor watches one kernel at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::monitor::Monitor;
    ///
    /// let monitor = Monitor::new("127.0.0.1:0".parse().unwrap())?;
    /// let kernel = monitor.build(trapline::Builder::new())?;
    /// let again = monitor.build(trapline::Builder::new()).unwrap_err();
    /// assert_eq!(again.to_string(), "trapline monitor: already watching a kernel");
    /// drop(kernel);
    /// assert!(monitor.build(trapline::Builder::new()).is_ok(), "free again");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(&self, builder: Builder) -> io::Result<Kernel> {
        let watching = self
            .probe
            .borrow()
            .as_ref()
            .is_some_and(|p| p.stats().is_some());
        if watching {
            return Err(io::Error::other(
                "trapline monitor: already watching a kernel",
            ));
        }
        let kernel = builder.hooks(self.board.clone()).build()?;
        *self.probe.borrow_mut() = Some(kernel.probe());
        Ok(kernel)
    }

    /// Starts listening: binds the address and spawns the `monitor` task.
    /// Called from a task of the kernel [`Monitor::build`] made; returns the
    /// address bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::monitor::Monitor;
    ///
    /// let monitor = Monitor::new("127.0.0.1:0".parse().unwrap())?;
    /// let mut kernel = monitor.build(trapline::Builder::new())?;
    /// let addr = kernel.run(async { monitor.start() })??;
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    ///
    /// // A kernel it does not watch is refused.
    /// let other = trapline::run(async { monitor.start() })?.unwrap_err();
    /// assert_eq!(other.to_string(), "trapline monitor: started outside the kernel it watches");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start(&self) -> io::Result<SocketAddr> {
        let me = crate::current()?;
        let ours = self
            .probe
            .borrow()
            .as_ref()
            .and_then(|p| p.state(me))
            .is_some();
        if !ours {
            return Err(io::Error::other(
                "trapline monitor: started outside the kernel it watches",
            ));
        }
        let listener =
            crate::net::TcpListener::bind(self.addr).map_err(|e| self.cannot_listen(e))?;
        self.serve(listener)
    }

    /// The error of a monitor that cannot listen on its address.
    fn cannot_listen(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("trapline monitor: cannot listen on {}: {e}", self.addr),
        )
    }

    /// Spawns the `monitor` task on `listener`; returns its address.
    fn serve(&self, listener: crate::net::TcpListener) -> io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        crate::task::Builder::new()
            .name("monitor")
            .spawn(serve(listener, self.clone()))?;
        log::info!(target: "trapline::monitor", "listening on {addr} (nc {} {})", addr.ip(), addr.port());
        Ok(addr)
    }

    /// Runs `future` on a kernel built from `builder`, with this monitor
    /// watching it and listening from the start.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::monitor::Monitor;
    ///
    /// let monitor = Monitor::new("127.0.0.1:0".parse().unwrap())?;
    /// let out = monitor.run(trapline::Builder::new(), async { 6 * 7 })?;
    /// assert_eq!(out, 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn run<F: Future>(&self, builder: Builder, future: F) -> io::Result<F::Output> {
        let mut kernel = self.build(builder)?;
        kernel.run(async {
            self.start()?;
            Ok(future.await)
        })?
    }
}

impl Monitor {
    /// [`Monitor::run`] for a monitor asked for by [`ENV_VAR`]: one that
    /// cannot listen (its address is taken, most often by the monitor of
    /// another kernel of the same program, one kernel a thread) is not an
    /// error. It is logged as a warning and the kernel runs without it.
    ///
    /// Discussion: the variable is read by every `trapline::run`, so a
    /// program that runs one kernel per core would otherwise fail to start
    /// its second kernel. The address is bound before the kernel is built:
    /// the first kernel to bind it gets the monitor, and the others are
    /// built without its hooks, as if the variable were unset.
    #[track_caller]
    pub(crate) fn run_if_free<F: Future>(
        &self,
        builder: Builder,
        future: F,
    ) -> io::Result<F::Output> {
        let socket = match crate::net::listening(
            self.addr,
            crate::net::TcpListener::DEFAULT_BACKLOG,
        ) {
            Ok(socket) => socket,
            Err(e) => {
                let e = self.cannot_listen(e);
                log::warn!(target: "trapline::monitor", "{e}; this kernel runs without a monitor");
                return builder.build()?.run(future);
            }
        };
        let mut kernel = self.build(builder)?;
        kernel.run(async {
            self.serve(crate::net::TcpListener::from_listening(socket))?;
            Ok(future.await)
        })?
    }
}

/// What a value of [`ENV_VAR`] asks for.
fn setting(value: &str) -> io::Result<Option<SocketAddr>> {
    let value = value.trim();
    match value {
        "" | "0" | "off" => return Ok(None),
        "1" | "on" => return Ok(Some(DEFAULT_ADDR)),
        _ => {}
    }
    if let Ok(port) = value.parse::<u16>() {
        return Ok(Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)));
    }
    value.parse().map(Some).map_err(|_| {
        refuse(format!(
            "{ENV_VAR}={value:?}: expected 1, a port, or a loopback address such as 127.0.0.1:48802"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each form the environment variable takes, and a wrong one.
    #[test]
    fn env_settings() {
        assert_eq!(setting("").unwrap(), None);
        assert_eq!(setting("off").unwrap(), None);
        assert_eq!(setting("1").unwrap(), Some(DEFAULT_ADDR));
        assert_eq!(
            setting("48803").unwrap(),
            Some("127.0.0.1:48803".parse().unwrap())
        );
        assert_eq!(
            setting("[::1]:9000").unwrap(),
            Some("[::1]:9000".parse().unwrap())
        );
        assert_eq!(
            setting("localhost").unwrap_err().to_string(),
            "TRAPLINE_MONITOR=\"localhost\": expected 1, a port, or a loopback address such as 127.0.0.1:48802"
        );
    }
}
