//! The monitor's listener and connections: tasks of the kernel they watch.
//!
//! The monitor is not a thread beside the kernel. It is two kinds of
//! ordinary task, written with trapline's own sockets: one accepts on the
//! loopback address, and one per connection reads a line, answers it and
//! waits for the next. While nobody types, they are parked on `ReadWait` like
//! any other task, so watching costs the kernel nothing; an answer is built
//! in one poll of the connection's task and written at the reader's pace
//! (a reader that never reads parks its own task on `WriteWait`, nobody
//! else's): the monitor cannot block the kernel it watches. They appear in
//! `ps` under the names `monitor` and `monitor client`, and end with the run
//! like everything else. At most [`MAX_CLIENTS`] connections are served at
//! once: each costs a task and two buffers, and a loop of `nc` should not
//! grow the kernel it watches without end. One more gets one `error:` line
//! and is closed.
//!
//! Discussion: building an answer does hold the loop for that one poll, in
//! proportion to what it lists: a `ps` of 100,000 tasks formats 100,000
//! rows before the loop goes on. That is the price of an answer that is one
//! consistent picture; a `ps` that yielded between rows would list tasks
//! that had already moved on.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use log::{debug, warn};

use super::commands::{self, Command, HELP};
use super::Monitor;
use crate::net::{TcpListener, TcpStream};
use crate::task::Builder;
use crate::TrapError;

/// What ends every answer: the prompt for the next command.
pub(crate) const PROMPT: &str = "trapline > ";

/// The longest line the monitor reads, in bytes, not counting its newline.
const MAX_LINE: usize = 1024;

/// The most connections served at once; one more is told so and closed.
const MAX_CLIENTS: usize = 8;

/// The line a connection past [`MAX_CLIENTS`] gets before it is closed.
fn busy() -> String {
    format!(
        "error: the monitor serves {MAX_CLIENTS} connections at once; try again when one closes\n"
    )
}

/// One served connection, counted while its task lives.
struct Seat(Rc<Cell<usize>>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Accepts connections until the task is cancelled (the run ends).
pub(crate) async fn serve(listener: TcpListener, monitor: Monitor) {
    let served = Rc::new(Cell::new(0));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) if served.get() >= MAX_CLIENTS => {
                debug!(target: "trapline::monitor", "connection from {peer} refused: {MAX_CLIENTS} served");
                // One short write into a new socket's empty buffer: it does
                // not wait. The stream is closed when it goes out of scope.
                let _ = stream.write(busy().as_bytes()).await;
            }
            Ok((stream, peer)) => {
                debug!(target: "trapline::monitor", "connection from {peer}");
                let monitor = monitor.clone();
                served.set(served.get() + 1);
                let seat = Seat(served.clone());
                let spawned = Builder::new().name("monitor client").spawn(async move {
                    let _seat = seat;
                    client(stream, monitor).await
                });
                if let Err(e) = spawned {
                    warn!(target: "trapline::monitor", "cannot serve {peer}: {e}");
                }
            }
            // Cancelled (the run is over) or refused by the kernel: stop.
            Err(e) if TrapError::from_io(&e).is_some() => return,
            Err(e) => {
                // Out of fds, say: wait a little instead of spinning on it.
                warn!(target: "trapline::monitor", "accept failed: {e}");
                if crate::sleep(Duration::from_millis(100)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One connection: a banner, then a prompt after every answer.
async fn client(stream: TcpStream, monitor: Monitor) -> io::Result<()> {
    let tasks = monitor.board.with(|t| t.len());
    let banner = format!("trapline monitor: {tasks} task(s); type help\n{PROMPT}");
    stream.write_all(banner.as_bytes()).await?;
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0; 512];
    // Inside a line too long to read: its bytes are dropped up to its end.
    let mut skipping = false;
    loop {
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if std::mem::take(&mut skipping) {
                continue;
            }
            // `end` is the line's length without its newline: a line that
            // arrived whole in one read is held to the limit too.
            let (reply, go_on) = if end > MAX_LINE {
                (too_long(), true)
            } else {
                answer(&monitor, &line)
            };
            stream.write_all(reply.as_bytes()).await?;
            if !go_on {
                return Ok(());
            }
        }
        if skipping {
            pending.clear();
        } else if pending.len() > MAX_LINE {
            pending.clear();
            skipping = true;
            stream.write_all(too_long().as_bytes()).await?;
        }
        match stream.read(&mut chunk).await? {
            0 => return Ok(()), // the peer left
            n => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The reply to a line longer than [`MAX_LINE`] bytes.
fn too_long() -> String {
    format!("error: a line longer than {MAX_LINE} bytes\n{PROMPT}")
}

/// The reply to one line, prompt included, and whether to go on.
fn answer(monitor: &Monitor, line: &[u8]) -> (String, bool) {
    let Ok(line) = std::str::from_utf8(line) else {
        return (format!("error: not UTF-8 text\n{PROMPT}"), true);
    };
    let probe = monitor.probe.borrow().clone();
    let Some(probe) = probe else {
        return (format!("error: no kernel attached\n{PROMPT}"), true);
    };
    let board = &monitor.board;
    let result = match commands::parse(line) {
        Err(e) => Err(e),
        Ok(Command::Quit) => return ("bye\n".to_string(), false),
        Ok(Command::Nothing) => Ok(String::new()),
        Ok(Command::Help) => Ok(HELP.to_string()),
        Ok(Command::Ps) => crate::clock()
            .map(|now| commands::ps(board, &probe, now))
            .map_err(|e| e.to_string()),
        Ok(Command::Where(id)) => commands::where_is(board, &probe, id),
        Ok(Command::Cancel(id)) => commands::cancel(board, id, crate::current().ok()),
        Ok(Command::Stats) => commands::stats(&probe),
    };
    match result {
        Ok(text) => (format!("{text}{PROMPT}"), true),
        Err(e) => (format!("error: {e}\n{PROMPT}"), true),
    }
}
