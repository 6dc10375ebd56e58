//! The four echo servers the bench compares, each on a thread of its own.
//!
//! They do the same thing the same way, so that only the runtime differs:
//! one task (or, for raw mio, one slab entry) per connection, `TCP_NODELAY`,
//! a 4 KiB read buffer, read what is there and write all of it back. Each
//! server thread pins itself to the server core before it starts; tokio
//! multi_thread pins both its workers there too, and so does trapline with two
//! kernels (`trapline-2k`, one listener each on the port through
//! `SO_REUSEPORT`), so every server gets the
//! same single core and the load generator has the other one to itself.
//!
//! Servers are started once per bench run and never stopped: between rounds
//! they sit idle in `epoll_wait`, which costs the others nothing.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;

use crate::pin::pin_to;

/// The read buffer of every server: bigger than any message, so one read
/// takes a whole message and a short read means the socket is drained.
pub const BUF: usize = 4096;

/// A runtime under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// trapline, one kernel.
    Trapline,
    /// tokio, `current_thread`.
    TokioCt,
    /// tokio, `multi_thread` with 2 workers (both pinned to the server core).
    TokioMt,
    /// A hand-written mio loop: the floor.
    RawMio,
    /// trapline, two kernels (`run_threads`) sharing the port through
    /// `SO_REUSEPORT`, both pinned to the server core like tokio's workers.
    Trapline2,
}

impl Server {
    /// Every server, in the order rounds visit them.
    pub const ALL: [Server; 5] = [
        Server::Trapline,
        Server::TokioCt,
        Server::TokioMt,
        Server::RawMio,
        Server::Trapline2,
    ];

    /// The name used in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Server::Trapline => "trapline",
            Server::TokioCt => "tokio-ct",
            Server::TokioMt => "tokio-mt2",
            Server::RawMio => "raw-mio",
            Server::Trapline2 => "trapline-2k",
        }
    }

    /// The server called `name`.
    pub fn by_name(name: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Starts the server on a thread pinned to `core`, listening on a fresh
    /// loopback port; returns its address once it listens.
    pub fn start(self, core: usize, port: u16) -> io::Result<SocketAddr> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("echo-{}", self.name()))
            .spawn(move || {
                pin_to(core);
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let result = match self {
                    Server::Trapline => trapline_server(addr, tx.clone()),
                    Server::TokioCt => tokio_server(addr, None, tx.clone()),
                    Server::TokioMt => tokio_server(addr, Some(core), tx.clone()),
                    Server::RawMio => mio_server(addr, tx.clone()),
                    Server::Trapline2 => two_kernels(addr, core, tx.clone()),
                };
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                }
            })?;
        rx.recv()
            .map_err(|_| io::Error::other("the server thread ended"))?
    }
}

type Ready = mpsc::Sender<io::Result<SocketAddr>>;

fn trapline_server(addr: SocketAddr, ready: Ready) -> io::Result<()> {
    use trapline::net::TcpListener;
    trapline::run(async move {
        let listener = TcpListener::bind_with_backlog(addr, 4096)?;
        let _ = ready.send(listener.local_addr());
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            trapline::spawn(echo(stream)).map_err(io::Error::from)?;
        }
    })?
}

/// Two kernels, one listener each on the same port (`SO_REUSEPORT`): the
/// OS spreads the connections between them.
fn two_kernels(addr: SocketAddr, core: usize, ready: Ready) -> io::Result<()> {
    use trapline::net::TcpListener;
    // Both kernels must bind the same port: pick a free one first.
    let addr = if addr.port() == 0 {
        std::net::TcpListener::bind(addr)?.local_addr()?
    } else {
        addr
    };
    let (bound_tx, bound_rx) = mpsc::channel::<io::Result<SocketAddr>>();
    let waiter = std::thread::spawn(move || {
        let first = bound_rx.recv();
        let second = bound_rx.recv();
        let _ = ready.send(match (first, second) {
            (Ok(Ok(a)), Ok(Ok(_))) => Ok(a),
            (Ok(Err(e)), _) | (_, Ok(Err(e))) => Err(e),
            _ => Err(io::Error::other("a kernel ended before it listened")),
        });
    });
    let served = trapline::run_threads(2, |_| {
        let bound = bound_tx.clone();
        async move {
            pin_to(core);
            let listener = TcpListener::builder(addr)
                .reuse_port(true)
                .nodelay(true)
                .backlog(4096)
                .bind();
            let listener = match listener {
                Ok(l) => {
                    let _ = bound.send(l.local_addr());
                    l
                }
                Err(e) => {
                    let _ = bound.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            loop {
                let (stream, _) = listener.accept().await?;
                trapline::spawn(echo(stream)).map_err(io::Error::from)?;
            }
        }
    })?;
    let _ = waiter.join();
    served
        .into_iter()
        .collect::<io::Result<Vec<()>>>()
        .map(drop)
}

/// One connection of the trapline servers.
async fn echo(stream: trapline::net::TcpStream) -> io::Result<()> {
    let mut buf = [0u8; BUF];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

fn tokio_server(addr: SocketAddr, workers_on: Option<usize>, ready: Ready) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = match workers_on {
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Some(core) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(move || pin_to(core))
            .enable_all()
            .build()?,
    };
    runtime.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(4096)?;
        let _ = ready.send(listener.local_addr());
        loop {
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buf = [0u8; BUF];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<(), io::Error>(());
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            });
        }
    })
}

/// One connection of the raw loop: the bytes read and not yet written back.
struct Conn {
    stream: mio::net::TcpStream,
    pending: Vec<u8>,
}

/// The floor: what an echo server on mio costs with no runtime at all.
///
/// Discussion: like tokio and trapline (with its drained bit), it stops
/// reading after a short read instead of reading again to see `EAGAIN`: on a
/// TCP socket a short read means the receive queue was empty, and any byte
/// arriving later makes a new edge.
fn mio_server(addr: SocketAddr, ready: Ready) -> io::Result<()> {
    use mio::net::TcpListener;
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);

    let mut poll = Poll::new()?;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(socket.into());
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let _ = ready.send(listener.local_addr());
    let mut conns: slab::Slab<Conn> = slab::Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; BUF];
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            // A signal: nothing happened.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let entry = conns.vacant_entry();
                            poll.registry().register(
                                &mut stream,
                                Token(entry.key()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            entry.insert(Conn {
                                stream,
                                pending: Vec::new(),
                            });
                        }
                        // The accept queue is empty.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            if serve(conn, &mut buf).is_err() {
                let mut conn = conns.remove(key);
                poll.registry().deregister(&mut conn.stream)?;
            }
        }
    }
}

/// Echoes what `conn` has; `Err` when it should be closed.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
    loop {
        if !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                // The send buffer is full: wait for the writable edge.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // A signal: try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            continue;
        }
        match conn.stream.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                match conn.stream.write(&buf[..n]) {
                    Ok(w) => conn.pending.extend_from_slice(&buf[w..n]),
                    // The send buffer is full: keep it all.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        conn.pending.extend_from_slice(&buf[..n])
                    }
                    Err(e) => return Err(e),
                }
                if n < buf.len() && conn.pending.is_empty() {
                    return Ok(()); // drained: the next byte makes a new edge
                }
            }
            // Drained: wait for the next readable edge.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // A signal: try again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
