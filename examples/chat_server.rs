//! A chat server: every line a client sends goes to every other client.
//!
//! Run it, then join from a few terminals:
//!
//! ```text
//! cargo run --release --example chat_server -- --addr 127.0.0.1:7003
//! python3 -c 'import socket,sys,threading; s=socket.create_connection(("127.0.0.1",7003)); threading.Thread(target=lambda: [sys.stdout.write(l.decode()) for l in s.makefile("rb")], daemon=True).start(); [s.sendall(l.encode()) for l in sys.stdin]'
//! ```
//!
//! Each client has two tasks: a reader that broadcasts its lines, and a
//! writer that drains the client's own outbox. Broadcasting never waits on
//! a client's socket: it only puts the line in each outbox (a bounded
//! channel). A client too slow to keep up fills its outbox and is
//! disconnected, so a slow client never stalls the others
//! (`tests/chat.rs` checks it).
//!
//! Discussion: a reader with a lot of input already in its socket would
//! broadcast line after line without ever trapping, and the writers would
//! not run in between: a *fast* client's outbox would fill too. So a reader
//! yields every few lines, letting the writers drain the outboxes; only a
//! client whose socket stays full falls behind for good.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;

use futures::channel::mpsc;
use futures::io::{AsyncBufReadExt, BufReader};
use futures::StreamExt;
use log::info;
use trapline::net::{OwnedReadHalf, OwnedWriteHalf, TcpListener};

const USAGE: &str = "usage: chat_server [--addr IP:PORT]   (default 127.0.0.1:7003)";

/// Lines a client may be behind before it is dropped as too slow.
const OUTBOX: usize = 256;

/// Lines a reader broadcasts before it lets the writers run.
const BURST: usize = 16;

/// A client as the room knows it: its outbox, and its socket, to shut down
/// if it falls behind.
struct Member {
    outbox: mpsc::Sender<Rc<str>>,
    writer: Rc<OwnedWriteHalf>,
}

/// Every client, by client number.
type Room = Rc<RefCell<HashMap<u64, Member>>>;

/// Puts `line` in every outbox but `from`'s; drops clients whose outbox is full.
fn broadcast(room: &Room, from: u64, line: &str) {
    let line: Rc<str> = Rc::from(line);
    room.borrow_mut().retain(|&id, member| {
        if id == from {
            return true;
        }
        match member.outbox.try_send(line.clone()) {
            Ok(()) => true,
            Err(e) if e.is_full() => {
                info!("client {id}: too slow, disconnected");
                // Its blocked write fails and its reader sees the end.
                let _ = member.writer.stream().shutdown(Shutdown::Both);
                false
            }
            Err(_) => false, // its writer has gone
        }
    });
}

/// Reads `reader`'s lines and broadcasts them until it hangs up.
async fn read_lines(room: &Room, id: u64, reader: OwnedReadHalf) -> io::Result<()> {
    let mut lines = BufReader::new(reader).lines();
    let mut burst = 0;
    while let Some(line) = lines.next().await {
        broadcast(room, id, &format!("{id}: {}\n", line?));
        burst += 1;
        if burst == BURST {
            burst = 0;
            trapline::yield_now().await?;
        }
    }
    Ok(())
}

/// Runs the chat room on `listener` until accepting fails.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let room: Room = Rc::default();
    let mut next_id = 0;
    loop {
        let (stream, peer) = listener.accept().await?;
        next_id += 1;
        let id = next_id;
        let (reader, writer) = stream.into_split();
        let writer = Rc::new(writer);
        let (outbox, mut inbox) = mpsc::channel::<Rc<str>>(OUTBOX);
        let member = Member {
            outbox,
            writer: writer.clone(),
        };
        room.borrow_mut().insert(id, member);
        broadcast(&room, id, &format!("* {id} joined\n"));
        info!("client {id} is {peer}");
        trapline::spawn(async move {
            while let Some(line) = inbox.next().await {
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        })?;
        let room = room.clone();
        trapline::spawn(async move {
            if let Err(e) = read_lines(&room, id, reader).await {
                info!("client {id}: {e}");
            }
            room.borrow_mut().remove(&id);
            broadcast(&room, id, &format!("* {id} left\n"));
        })?;
    }
}

fn main() {
    env_logger::init();
    let mut addr: SocketAddr = "127.0.0.1:7003".parse().expect("a valid default");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(v)) => {
                addr = v.parse().unwrap_or_else(|e| {
                    eprintln!("chat_server: --addr {v:?}: {e}\n{USAGE}");
                    std::process::exit(2)
                })
            }
            ("-h" | "--help", _) => return println!("{USAGE}"),
            _ => {
                eprintln!("chat_server: bad argument {arg:?}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    let served = trapline::run(async {
        let listener = TcpListener::builder(addr).nodelay(true).bind()?;
        println!("chat_server on {}", listener.local_addr()?);
        serve(listener).await
    });
    if let Err(e) = served.and_then(|r| r) {
        eprintln!("chat_server: {addr}: {e}");
        std::process::exit(1);
    }
}
