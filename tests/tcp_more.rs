//! TCP beyond the basics: the listener builder, options, peek, vectored I/O,
//! owned halves in two tasks, connecting by name and with a time limit.

mod util;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use trapline::net::{lookup_host, TcpListener, TcpStream};
use trapline::{spawn, Ended, Hooks, Kernel, Parked, TaskId, TrapError};
use util::{run_clean, tcp_pair, Rng};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A megabyte of random bytes, sent through one owned half by one task and
/// read through the other half of the peer by another, arrives byte-exact in
/// both directions at once.
#[test]
fn owned_halves_in_two_tasks_carry_both_directions_byte_exact() {
    run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let up = Rng::new(1).bytes(1 << 20);
        let down = Rng::new(2).bytes(1 << 20);
        let (server_read, server_write) = server.into_split();
        let (client_read, client_write) = client.into_split();
        let (up2, down2) = (up.clone(), down.clone());
        let sender_up = spawn(async move { client_write.write_all(&up2).await }).unwrap();
        let sender_down = spawn(async move { server_write.write_all(&down2).await }).unwrap();
        let reader_up = spawn(async move {
            let mut got = vec![0; 1 << 20];
            server_read.read_exact(&mut got).await.map(|()| got)
        })
        .unwrap();
        let mut got_down = vec![0; 1 << 20];
        client_read.read_exact(&mut got_down).await.unwrap();
        sender_up.join().await.unwrap().unwrap();
        sender_down.join().await.unwrap().unwrap();
        assert_eq!(reader_up.join().await.unwrap().unwrap(), up);
        assert_eq!(got_down, down);
    });
}

/// Dropping the write half is a half-close: the peer reads end of stream,
/// and can still answer through the read half.
#[test]
fn dropping_the_write_half_is_a_half_close() {
    run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let (reader, writer) = client.into_split();
        writer.write_all(b"request").await.unwrap();
        drop(writer);
        let mut got = Vec::new();
        let mut buf = [0; 16];
        loop {
            match server.read(&mut buf).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, b"request");
        server.write_all(b"response").await.unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        let mut back = [0; 8];
        reader.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"response");
        assert_eq!(reader.read(&mut buf).await.unwrap(), 0);
    });
}

/// `peek` leaves the bytes for the next read; a vectored write sends its
/// buffers in order in one call.
#[test]
fn peek_then_read_and_vectored_write_keep_bytes_in_order() {
    run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let n = client
            .write_vectored(&[
                IoSlice::new(b"HEAD"),
                IoSlice::new(b""),
                IoSlice::new(b"body"),
            ])
            .await
            .unwrap();
        assert_eq!(n, 8);
        let mut peeked = [0; 4];
        let mut have = 0;
        while have < 4 {
            have = server.peek(&mut peeked).await.unwrap();
        }
        assert_eq!(&peeked, b"HEAD");
        let mut all = [0; 8];
        server.read_exact(&mut all).await.unwrap();
        assert_eq!(&all, b"HEADbody");
    });
}

/// Two readers at once are refused even when one of them peeks.
#[test]
fn a_peek_and_a_read_waiting_together_get_resource_busy() {
    run_clean(async {
        let (client, server) = tcp_pair().await.unwrap();
        let mut a = [0; 4];
        let mut b = [0; 4];
        // Both wait before the byte arrives: the second is refused at once,
        // the first takes the byte.
        let (peeked, read, ()) = futures::join!(server.peek(&mut a), server.read(&mut b), async {
            trapline::yield_now().await.unwrap();
            client.write_all(b"x").await.unwrap();
        });
        let busy = [peeked.err(), read.err()]
            .into_iter()
            .flatten()
            .filter(|e| TrapError::from_io(e) == Some(&TrapError::ResourceBusy))
            .count();
        assert_eq!(busy, 1, "exactly the second reader is refused");
    });
}

/// Every option reads back what was set.
#[test]
fn stream_options_read_back() {
    run_clean(async {
        let (client, _server) = tcp_pair().await.unwrap();
        client.set_keepalive(Some(Duration::from_secs(75))).unwrap();
        assert_eq!(client.keepalive().unwrap(), Some(Duration::from_secs(75)));
        client.set_keepalive(None).unwrap();
        assert_eq!(client.keepalive().unwrap(), None);
        client.set_linger(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(client.linger().unwrap(), Some(Duration::from_secs(3)));
        client.set_linger(None).unwrap();
        assert_eq!(client.linger().unwrap(), None);
        client.set_ttl(33).unwrap();
        assert_eq!(client.ttl().unwrap(), 33);
        client.set_send_buffer_size(100_000).unwrap();
        assert_eq!(
            client.send_buffer_size().unwrap(),
            200_000,
            "Linux doubles it"
        );
        client.set_recv_buffer_size(100_000).unwrap();
        assert_eq!(
            client.recv_buffer_size().unwrap(),
            200_000,
            "Linux doubles it"
        );
    });
}

/// The builder's options: nodelay reaches accepted streams, reuse_port
/// lets two listeners share a port, which is otherwise taken.
#[test]
fn listener_builder_options_take_effect() {
    run_clean(async {
        let plain = TcpListener::bind(loopback()).unwrap();
        let _c = TcpStream::connect(plain.local_addr().unwrap())
            .await
            .unwrap();
        assert!(!plain.accept().await.unwrap().0.nodelay().unwrap());

        let fast = TcpListener::builder(loopback())
            .nodelay(true)
            .backlog(4)
            .bind()
            .unwrap();
        let _c = TcpStream::connect(fast.local_addr().unwrap())
            .await
            .unwrap();
        assert!(fast.accept().await.unwrap().0.nodelay().unwrap());

        let first = TcpListener::builder(loopback())
            .reuse_port(true)
            .bind()
            .unwrap();
        let addr = first.local_addr().unwrap();
        let second = TcpListener::builder(addr).reuse_port(true).bind().unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        let taken = TcpListener::builder(addr).bind().unwrap_err();
        assert_eq!(taken.kind(), ErrorKind::AddrInUse);
    });
}

/// The last thing each task did: `Some(traps)` while it is parked on them,
/// `None` while it runs or after it ended; and every trap it ever parked on.
#[derive(Default)]
struct Parks {
    now: RefCell<HashMap<TaskId, Option<Vec<String>>>>,
    ever: RefCell<HashMap<TaskId, Vec<String>>>,
    /// The lines of each task's last parks.
    lines: RefCell<HashMap<TaskId, Vec<u32>>>,
}

impl Hooks for Parks {
    fn running(&self, task: TaskId, _: Instant) {
        self.now.borrow_mut().insert(task, None);
    }
    fn suspended(&self, task: TaskId, parks: &[Parked], _: Instant) {
        let names: Vec<String> = parks.iter().map(|p| p.trap.name().to_string()).collect();
        let lines = parks.iter().map(|p| p.location.line()).collect();
        self.lines.borrow_mut().insert(task, lines);
        self.ever
            .borrow_mut()
            .entry(task)
            .or_default()
            .extend(names.iter().cloned());
        self.now.borrow_mut().insert(task, Some(names));
    }
    fn terminated(&self, task: TaskId, _: Ended, _: Instant) {
        self.now.borrow_mut().insert(task, None);
    }
}

impl Parks {
    fn parked_on(&self, task: TaskId, trap: &str) -> bool {
        matches!(self.now.borrow().get(&task), Some(Some(traps)) if traps.iter().any(|t| t == trap))
    }
}

/// Runs `test` on a kernel with [`Parks`] hooks, then checks nothing leaked.
fn with_parks<F: std::future::Future<Output = ()>>(test: impl FnOnce(Rc<Parks>) -> F) {
    let parks = Rc::new(Parks::default());
    let mut kernel = Kernel::builder().hooks(parks.clone()).build().unwrap();
    kernel.run(test(parks)).unwrap();
    util::assert_clean(&kernel.stats());
}

/// `connect("localhost:PORT")` resolves on a helper thread and connects;
/// a port that is not a number is a clear error, not a lookup. The kernel
/// is not blocked meanwhile: the lookup's task parks on `FutureWait` and
/// another task (this one) runs while the lookup is outstanding.
#[test]
fn connect_by_name_resolves_without_blocking_the_kernel() {
    with_parks(|parks| async move {
        let listener = TcpListener::bind(loopback()).unwrap();
        let port = listener.local_addr().unwrap().port();
        let lookup = spawn(lookup_host(format!("localhost:{port}"))).unwrap();
        let id = lookup.id();
        let mut ran_meanwhile = 0;
        while !lookup.is_finished() {
            if parks.parked_on(id, "FutureWait") {
                ran_meanwhile += 1;
            }
            trapline::yield_now().await.unwrap();
        }
        assert!(
            parks.ever.borrow()[&id].iter().any(|t| t == "FutureWait"),
            "the lookup waited at a trap, not in the kernel"
        );
        assert!(
            ran_meanwhile > 0,
            "this task ran while the lookup was parked"
        );
        let addrs = lookup.join().await.unwrap().unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == port));
        let client = TcpStream::connect(("localhost", port)).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b"by name").await.unwrap();
        let mut buf = [0; 7];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"by name");

        let bad = TcpStream::connect("localhost:http").await.unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidInput);
        let no_port = lookup_host("localhost").await.unwrap_err();
        assert_eq!(no_port.kind(), ErrorKind::InvalidInput);
    });
}

/// A lookup cancelled while it is parked on `FutureWait` (reported at the
/// caller's line) ends with `Cancelled` (even if the helper's answer arrives at the same moment) and
/// leaves nothing behind.
#[test]
fn a_cancelled_lookup_ends_with_cancelled() {
    with_parks(|parks| async move {
        let (lookup, line) = (spawn(lookup_host("localhost:80")).unwrap(), line!());
        let id = lookup.id();
        trapline::yield_now().await.unwrap(); // its first poll parks it
        assert!(
            parks.parked_on(id, "FutureWait"),
            "the lookup waits at its trap"
        );
        assert_eq!(parks.lines.borrow()[&id], [line], "at the caller's line");
        let ended = lookup.cancel().await.unwrap();
        let err = ended.unwrap_err();
        assert_eq!(TrapError::from_io(&err), Some(&TrapError::Cancelled));
    });
}

/// A connection the listener never takes (its accept queue is full, so the
/// OS drops the SYN) ends at the limit with a plain `TimedOut`.
#[test]
fn connect_timeout_gives_timed_out_when_nobody_answers() {
    run_clean(async {
        let listener = TcpListener::builder(loopback()).backlog(0).bind().unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        let mut timed_out = None;
        for _ in 0..16 {
            match TcpStream::connect_timeout(addr, Duration::from_millis(100)).await {
                Ok(stream) => held.push(stream),
                Err(e) => {
                    timed_out = Some(e);
                    break;
                }
            }
        }
        let err = timed_out.expect("the full accept queue stops answering");
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(TrapError::from_io(&err).is_none(), "a plain io timeout");
    });
}
