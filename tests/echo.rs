//! An echo server and its clients, end to end: one task per connection on the
//! server side, many client tasks each sending random payloads and checking
//! every byte that comes back, then a clean half-close on both sides.
//!
//! The server runs either in the same kernel as the clients or in a kernel of
//! its own on another OS thread. Either way every connection must end with
//! both sides seeing end of stream, every task must end on its own, and the
//! kernels must hold nothing afterwards.

mod util;

use std::collections::BTreeMap;
use std::io;
use std::net::{Shutdown, SocketAddr};

use trapline::net::{TcpListener, TcpStream};
use trapline::{spawn, Kernel};
use util::{assert_clean, run_with_stats, Rng};

/// Client tasks per run.
const CLIENTS: usize = 200;
/// Payloads each client sends.
const ROUNDS: usize = 4;
/// The largest payload: sizes are drawn from 1 B ..= 64 KiB.
const MAX_PAYLOAD: usize = 64 * 1024;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Echoes until the peer shuts down its write half; returns the bytes echoed.
/// The stream is dropped (closed) on return, which is the client's EOF.
async fn echo(stream: TcpStream) -> io::Result<u64> {
    let mut buf = vec![0; 16 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Accepts exactly `n` connections, one echo task each, then waits for every
/// echo task to end. Returns the bytes each connection echoed, by peer address.
async fn serve(listener: TcpListener, n: usize) -> io::Result<BTreeMap<SocketAddr, u64>> {
    let mut handlers = Vec::with_capacity(n);
    for _ in 0..n {
        let (stream, peer) = listener.accept().await?;
        assert_eq!(stream.peer_addr()?, peer);
        stream.set_nodelay(true)?;
        handlers.push((peer, spawn(echo(stream))?));
    }
    drop(listener);
    let mut echoed = BTreeMap::new();
    for (peer, handler) in handlers {
        let total = handler.join().await??;
        assert!(echoed.insert(peer, total).is_none(), "peer {peer} twice");
    }
    Ok(echoed)
}

/// The index of the first byte where `a` and `b` differ, if they do.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// One client: sends `ROUNDS` random payloads, reads each one back in full
/// and compares it byte for byte, then shuts down its write half and waits
/// for the server's EOF. Returns its local address and the bytes sent.
async fn client(addr: SocketAddr, seed: u64) -> io::Result<(SocketAddr, u64)> {
    let mut rng = Rng::new(seed);
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    let mut back = vec![0; MAX_PAYLOAD];
    let mut total = 0;
    for round in 0..ROUNDS {
        let len = 1 + rng.below(MAX_PAYLOAD as u64) as usize;
        let payload = rng.bytes(len);
        stream.write_all(&payload).await?;
        stream.read_exact(&mut back[..len]).await?;
        if let Some(at) = first_difference(&back[..len], &payload) {
            panic!("client seed {seed}, round {round}: echo of {len} bytes differs at byte {at}");
        }
        total += len as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    // The server sees our EOF, ends its echo task and closes: our EOF.
    let n = stream.read(&mut back).await?;
    assert_eq!(n, 0, "client seed {seed}: expected EOF, got {n} bytes");
    // EOF is sticky.
    assert_eq!(stream.read(&mut back).await?, 0);
    Ok((local, total))
}

/// Spawns `n` client tasks at once against `addr`, with distinct seeds
/// starting at `first_seed`, and joins them all. Returns the bytes each sent,
/// by its local address.
async fn clients(
    addr: SocketAddr,
    n: usize,
    first_seed: u64,
) -> io::Result<BTreeMap<SocketAddr, u64>> {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n as u64 {
        tasks.push(spawn(client(addr, first_seed + i))?);
    }
    let mut sent = BTreeMap::new();
    for task in tasks {
        let (local, total) = task.join().await??;
        assert!(sent.insert(local, total).is_none(), "local {local} twice");
    }
    Ok(sent)
}

/// Runs an accept-loop echo server and `n` clients in `kernel`, checks
/// that every connection echoed exactly what its client sent (each client
/// checked its bytes itself) and that the kernel ends empty, having started
/// nothing but main, the accept loop and two tasks a connection.
fn echo_in_one_kernel(mut kernel: Kernel, n: usize, first_seed: u64) -> io::Result<()> {
    let (sent, echoed) = kernel
        .run(async {
            let listener = TcpListener::bind(loopback())?;
            let addr = listener.local_addr()?;
            let server = spawn(serve(listener, n))?;
            let sent = clients(addr, n, first_seed).await?;
            let echoed = server.join().await??;
            Ok::<_, io::Error>((sent, echoed))
        })
        .expect("the kernel ran")?;
    let stats = kernel.stats();
    assert_clean(&stats);
    assert_eq!(stats.spawned, 2 + 2 * n as u64);
    assert_eq!(sent.len(), n);
    assert_eq!(
        echoed, sent,
        "each connection echoes exactly what its client sent"
    );
    Ok(())
}

/// 200 clients and an accept-loop echo server share one kernel: every
/// payload comes back byte-exact, every connection ends with EOF on both
/// sides, every server task ends on its own (each connection's echo count
/// matches what its client sent), and the kernel holds no task,
/// registration, timer or timeout afterwards.
#[test]
fn echo_200_clients_in_one_kernel() -> io::Result<()> {
    echo_in_one_kernel(Kernel::builder().build()?, CLIENTS, 1_000)
}

/// The same exchange, 50 clients, with a kernel that takes one I/O event
/// per `epoll_wait`: readiness left behind by one poll must be reported by
/// the next (edge-triggered registrations lose nothing), so every
/// connection still completes byte-exact.
#[test]
fn echo_with_one_event_per_poll() -> io::Result<()> {
    echo_in_one_kernel(Kernel::builder().events_per_poll(1).build()?, 50, 3_000)
}

/// The same echo exchange with the server in a kernel of its own on another
/// OS thread and the 200 clients in the test thread's kernel: the two
/// kernels only meet through the sockets. Both kernels end empty, and each
/// connection's echo count matches what its client sent.
#[test]
fn echo_200_clients_with_server_on_another_thread() -> io::Result<()> {
    const FIRST_SEED: u64 = 5_000;
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let mut kernel = Kernel::builder().build().expect("a kernel");
        let out = kernel
            .run(async move {
                let listener = TcpListener::bind(loopback())?;
                addr_tx
                    .send(listener.local_addr()?)
                    .expect("the test thread waits for the address");
                serve(listener, CLIENTS).await
            })
            .expect("the server kernel ran");
        (out, kernel.stats())
    });
    let addr = addr_rx.recv().expect("the server thread sends its address");
    let (sent, client_stats) = run_with_stats(clients(addr, CLIENTS, FIRST_SEED));
    let sent = sent?;
    assert_clean(&client_stats);
    assert_eq!(client_stats.spawned, 1 + CLIENTS as u64);

    let (echoed, server_stats) = server.join().expect("the server thread did not panic");
    let echoed = echoed?;
    assert_clean(&server_stats);
    assert_eq!(server_stats.spawned, 1 + CLIENTS as u64);

    assert_eq!(sent.len(), CLIENTS);
    assert_eq!(
        echoed, sent,
        "each connection echoes exactly what its client sent"
    );
    Ok(())
}
