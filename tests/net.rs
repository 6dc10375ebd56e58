//! TCP on trapline, one behaviour at a time: refused connects, half-close,
//! addresses and options, early EOF, writes to a closed peer, registrations
//! released on drop, a full accept queue, and a timeout around `accept`.
//!
//! Every socket is on loopback with port 0; no test asserts on elapsed time.

mod util;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use trapline::net::{TcpListener, TcpStream};
use trapline::{spawn, timeout_after, yield_now, TrapError};
use util::{assert_clean, run_clean, run_with_stats, tcp_pair};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Connecting to a loopback port where a socket is bound but not listening
/// fails with `ConnectionRefused`, and the failed socket leaves no
/// registration behind.
#[test]
fn connect_to_closed_port_is_refused() {
    // Bound, never listening: the port stays ours, and every SYN gets a RST.
    let holder =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    holder.bind(&loopback().into()).expect("bind");
    let addr = holder.local_addr().unwrap().as_socket().unwrap();
    run_clean(async move {
        let err = TcpStream::connect(addr)
            .await
            .expect_err("nobody listens there");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        assert_eq!(
            TrapError::from_io(&err),
            None,
            "an OS error, not a trap error"
        );
    });
}

/// After the client shuts down its write half the server, which was already
/// waiting to read, gets the last bytes and then reads 0 (and
/// again 0: EOF is sticky), while the other direction still carries bytes
/// exactly; the client's own writes now fail with `BrokenPipe`. When the
/// server shuts down too, the client reads 0.
#[test]
fn half_close_gives_eof_one_way_only() -> io::Result<()> {
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let mut buf = [0; 10];
        // The server is already waiting when the bytes and the FIN arrive.
        let (read, shut) = futures::join!(server.read_exact(&mut buf), async {
            yield_now().await?;
            client.write_all(b"last words").await?;
            client.shutdown(Shutdown::Write)
        });
        shut?;
        read?;
        assert_eq!(&buf, b"last words");
        assert_eq!(server.read(&mut buf).await?, 0);
        assert_eq!(server.read(&mut buf).await?, 0, "EOF is sticky");

        // The other direction is untouched, and reading waits for it.
        let (read, sent) = futures::join!(
            async {
                let mut back = [0; 13];
                client.read_exact(&mut back).await?;
                Ok::<_, io::Error>(back)
            },
            async {
                yield_now().await?;
                server.write_all(b"still talking").await
            }
        );
        sent?;
        assert_eq!(&read?, b"still talking");

        let err = client
            .write(b"x")
            .await
            .expect_err("our write half is shut");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");

        server.shutdown(Shutdown::Write)?;
        assert_eq!(client.read(&mut buf).await?, 0);
        Ok(())
    })
}

/// The two ends of a connection agree: each one's local address is the
/// other's peer address, the server end sits on the listener's address,
/// and both are on 127.0.0.1.
#[test]
fn local_and_peer_addresses_agree() -> io::Result<()> {
    run_clean(async {
        let listener = TcpListener::bind(loopback())?;
        let addr = listener.local_addr()?;
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(addr.port(), 0);
        let (client, accepted) = futures::join!(TcpStream::connect(addr), listener.accept());
        let (client, (server, peer)) = (client?, accepted?);

        assert_eq!(client.peer_addr()?, addr);
        assert_eq!(server.local_addr()?, addr);
        assert_eq!(client.local_addr()?, server.peer_addr()?);
        assert_eq!(peer, client.local_addr()?, "accept reports the peer");
        assert_eq!(client.local_addr()?.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(client.local_addr()?.port(), addr.port());
        Ok(())
    })
}

/// `TCP_NODELAY` is off on a new stream, and `set_nodelay` round-trips
/// through `nodelay` both ways on both ends.
#[test]
fn set_nodelay_round_trips() -> io::Result<()> {
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        for stream in [&client, &server] {
            assert!(!stream.nodelay()?);
            stream.set_nodelay(true)?;
            assert!(stream.nodelay()?);
            stream.set_nodelay(false)?;
            assert!(!stream.nodelay()?);
        }
        client.set_nodelay(true)?;
        assert!(client.nodelay()?);
        assert!(!server.nodelay()?, "the option is per socket");
        Ok(())
    })
}

/// `read_exact` for 8 bytes when the peer sends 3 and closes fails with
/// `UnexpectedEof`, having filled in the 3 bytes that did arrive.
#[test]
fn read_exact_fails_with_unexpected_eof_when_peer_closes_early() -> io::Result<()> {
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let closer = spawn(async move {
            // Let the reader wait first, so the EOF arrives as an event.
            yield_now().await?;
            server.write_all(b"abc").await?;
            drop(server);
            Ok::<_, io::Error>(())
        })?;
        let mut buf = [0; 8];
        let err = client.read_exact(&mut buf).await.expect_err("only 3 bytes");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(&buf, b"abc\0\0\0\0\0");
        closer.join().await??;
        Ok(())
    })
}

/// SIGPIPEs this process has received since the counting handler was installed.
static SIGPIPES: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_sigpipe(_: i32) {
    SIGPIPES.fetch_add(1, Ordering::SeqCst);
}

mod sys {
    //! The two libc functions the SIGPIPE test needs; std links libc anyway.
    extern "C" {
        pub fn signal(signum: i32, handler: usize) -> usize;
        pub fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    }
    pub const SIGPIPE: i32 = 13;
    pub const SIG_IGN: usize = 1;
}

/// Writing to a peer that has closed its socket eventually fails with
/// `BrokenPipe` or `ConnectionReset` (within a bounded number of writes) and
/// never raises SIGPIPE. Rust ignores SIGPIPE by default, which would hide
/// one, so the test counts them with a handler, and first proves the
/// handler counts by raising one with a plain `write(2)` on a broken
/// socket.
#[test]
fn write_to_closed_peer_errors_without_sigpipe() -> io::Result<()> {
    // SAFETY: `count_sigpipe` only touches an atomic, which is
    // async-signal-safe; `signal` has no other precondition.
    let previous =
        unsafe { sys::signal(sys::SIGPIPE, count_sigpipe as extern "C" fn(i32) as usize) };
    assert_ne!(previous, usize::MAX, "signal(SIGPIPE) failed");

    // The control: a write(2) without MSG_NOSIGNAL to a closed peer does raise one.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    drop(theirs);
    let before = SIGPIPES.load(Ordering::SeqCst);
    // SAFETY: the buffer is a live 1-byte slice and the fd is open.
    let wrote = unsafe { sys::write(ours.as_raw_fd(), b"x".as_ptr(), 1) };
    assert_eq!(wrote, -1);
    assert_eq!(io::Error::last_os_error().kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(
        SIGPIPES.load(Ordering::SeqCst),
        before + 1,
        "the handler counts"
    );

    let baseline = SIGPIPES.load(Ordering::SeqCst);
    let result = run_clean(async {
        let (client, server) = tcp_pair().await?;
        drop(server);
        let chunk = [7; 1024];
        for attempt in 0..1_000 {
            match client.write(&chunk).await {
                Ok(_) => yield_now().await?,
                Err(err) => return Ok::<_, io::Error>((attempt, err)),
            }
        }
        panic!("1000 writes to a closed peer all succeeded");
    });
    let sigpipes = SIGPIPES.load(Ordering::SeqCst) - baseline;
    // SAFETY: restores the disposition Rust's runtime set at start-up.
    unsafe { sys::signal(sys::SIGPIPE, sys::SIG_IGN) };

    let (attempt, err) = result?;
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "write {attempt} failed with {err}"
    );
    assert_eq!(sigpipes, 0, "trapline's writes must never raise SIGPIPE");
    Ok(())
}

/// A writer waiting on a full send buffer (the peer reads nothing) is woken
/// when the peer closes its socket, and its write fails with
/// `ConnectionReset` or `BrokenPipe` instead of waiting forever (a 10 s
/// guard turns a hang into a failure).
#[test]
fn parked_writer_wakes_with_error_when_peer_closes() -> io::Result<()> {
    const LEN: usize = 16 << 20;
    run_clean(async {
        let (client, server) = tcp_pair().await?;
        let payload = vec![0x5A; LEN];
        let (written, closed) = futures::join!(
            timeout_after(Duration::from_secs(10), client.write_all(&payload)),
            async {
                // The writer fills the buffers and parks before this runs.
                yield_now().await?;
                drop(server);
                Ok::<_, io::Error>(())
            }
        );
        closed?;
        let err = match written {
            Ok(Ok(())) => panic!("{LEN} bytes cannot all fit in the socket buffers"),
            Ok(Err(err)) => err,
            Err(timed_out) => panic!("the parked writer was never woken: {timed_out}"),
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{err}"
        );
        Ok(())
    })
}

/// Streams and listeners release their fd from the kernel when dropped.
/// Twenty rounds each make a pair, make both ends wait for readiness (so
/// both fds are registered), exchange bytes and drop everything; fd numbers
/// are reused between rounds, so a registration left behind would leave a
/// new socket deaf (caught by the timeout guard). After the run no
/// registration is left.
#[test]
fn dropping_streams_releases_registrations() -> io::Result<()> {
    let (out, stats) = run_with_stats(async {
        let mut fds = BTreeSet::new();
        for round in 0..20_u8 {
            let guarded = timeout_after(Duration::from_secs(10), async {
                let (client, server) = tcp_pair().await?;
                fds.insert(client.as_raw_fd());
                // Both reads trap before the writes: both fds get registered.
                let (a, b, sent) = futures::join!(
                    async {
                        let mut buf = [0; 1];
                        client.read_exact(&mut buf).await.map(|()| buf[0])
                    },
                    async {
                        let mut buf = [0; 1];
                        server.read_exact(&mut buf).await.map(|()| buf[0])
                    },
                    async {
                        yield_now().await?;
                        client.write_all(&[round]).await?;
                        server.write_all(&[round + 100]).await
                    }
                );
                sent?;
                assert_eq!((a?, b?), (round + 100, round));
                Ok::<_, io::Error>(())
            })
            .await;
            match guarded {
                Ok(result) => result?,
                Err(e) => panic!("round {round}: a socket never became ready: {e}"),
            }
        }
        Ok::<_, io::Error>(fds)
    });
    let fds = out?;
    assert!(fds.len() < 20, "fd numbers were reused: {fds:?}");
    assert_eq!(stats.registrations, 0);
    assert_clean(&stats);
    Ok(())
}

/// A task still parked reading a stream when the main future returns is
/// cancelled by the kernel's shutdown: its read ends with `Cancelled`, the
/// task drops its stream, and no registration is left.
#[test]
fn shutdown_cancels_a_parked_reader_and_releases_its_stream() {
    let seen = Rc::new(RefCell::new(None));
    let (out, stats) = run_with_stats({
        let seen = seen.clone();
        async move {
            let (client, server) = tcp_pair().await?;
            spawn(async move {
                let mut buf = [0; 1];
                let result = server.read(&mut buf).await;
                *seen.borrow_mut() = Some(result.map_err(|e| TrapError::from_io(&e).cloned()));
            })?;
            // Let the reader trap (and register its fd), then leave it behind.
            // The client end outlives the kernel: no EOF reaches the reader.
            yield_now().await?;
            yield_now().await?;
            Ok::<_, io::Error>(client)
        }
    });
    let client = out.expect("main ran");
    assert_clean(&stats);
    assert_eq!(*seen.borrow(), Some(Err(Some(TrapError::Cancelled))));
    drop(client);
}

/// Fifty clients connect before the server accepts anything; the fifty
/// connections wait in the listener's backlog and fifty accepts then all
/// succeed, each yielding a live stream whose peer is exactly one of the
/// clients (one byte each way proves the pairing).
#[test]
fn accept_many_queued_connections() -> io::Result<()> {
    const N: usize = 50;
    run_clean(async {
        let listener = TcpListener::bind_with_backlog(loopback(), 64)?;
        let addr = listener.local_addr()?;
        let mut clients = Vec::with_capacity(N);
        for _ in 0..N {
            clients.push(TcpStream::connect(addr).await?);
        }
        let mut accepted = Vec::with_capacity(N);
        for _ in 0..N {
            accepted.push(listener.accept().await?);
        }
        let client_addrs: BTreeSet<SocketAddr> = clients
            .iter()
            .map(TcpStream::local_addr)
            .collect::<io::Result<_>>()?;
        let peers: BTreeSet<SocketAddr> = accepted.iter().map(|(_, peer)| *peer).collect();
        assert_eq!(client_addrs.len(), N);
        assert_eq!(peers, client_addrs);

        for (i, (server, peer)) in accepted.iter().enumerate() {
            server.write_all(&[i as u8]).await?;
            let client = clients
                .iter()
                .find(|c| c.local_addr().ok() == Some(*peer))
                .expect("a client for every peer");
            let mut byte = [0; 1];
            client.read_exact(&mut byte).await?;
            assert_eq!(byte, [i as u8]);
            client.write_all(&[!(i as u8)]).await?;
            server.read_exact(&mut byte).await?;
            assert_eq!(byte, [!(i as u8)]);
        }
        Ok(())
    })
}

/// `timeout_after` around an `accept` nobody connects to ends with
/// `Err(TrapError::TimedOut(_))`; the listener is left in working order (a
/// later connect is accepted) and nothing of the timeout remains.
#[test]
fn timeout_around_accept_with_no_clients() -> io::Result<()> {
    run_clean(async {
        let listener = TcpListener::bind(loopback())?;
        let addr = listener.local_addr()?;
        let out = timeout_after(Duration::from_millis(20), listener.accept()).await;
        match out {
            Err(TrapError::TimedOut(_)) => {}
            Err(other) => panic!("expected TimedOut, got {other:?}"),
            Ok(accepted) => panic!("nobody connected, yet accept gave {accepted:?}"),
        }

        let (client, accepted) = futures::join!(TcpStream::connect(addr), listener.accept());
        let (client, (_server, peer)) = (client?, accepted?);
        assert_eq!(peer, client.local_addr()?);
        Ok(())
    })
}
