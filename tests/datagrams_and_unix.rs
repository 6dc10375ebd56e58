//! UDP and Unix domain sockets: byte-exact round trips for every kind,
//! multicast and broadcast, abstract names, and stale socket files removed
//! only when asked.

mod util;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::linux::net::SocketAddrExt;
use std::path::PathBuf;

use trapline::net::{UdpSocket, UnixDatagram, UnixListener, UnixStream};
use trapline::spawn;
use util::{run_clean, Rng};

fn temp_path(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("trapline-test-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Datagrams of every size up to 8 KiB go out with `send_to` and come back
/// from an echo task byte-exact, with the right sender, in order.
#[test]
fn udp_send_to_recv_from_round_trip_is_byte_exact() {
    run_clean(async {
        let server = UdpSocket::bind(loopback()).unwrap();
        let server_addr = server.local_addr().unwrap();
        let echo = spawn(async move {
            let mut buf = vec![0; 65536];
            for _ in 0..64 {
                let (n, from) = server.recv_from(&mut buf).await?;
                server.send_to(&buf[..n], from).await?;
            }
            Ok::<_, std::io::Error>(())
        })
        .unwrap();
        let client = UdpSocket::bind(loopback()).unwrap();
        let mut rng = Rng::new(7);
        let mut buf = vec![0; 65536];
        for i in 0..64 {
            let len = (i * 128) as usize;
            let msg = rng.bytes(len);
            assert_eq!(client.send_to(&msg, server_addr).await.unwrap(), len);
            let (n, from) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, server_addr);
            assert_eq!(&buf[..n], &msg[..]);
        }
        echo.join().await.unwrap().unwrap();
    });
}

/// A connected UDP socket sends with `send`, receives with `recv`, and
/// ignores datagrams from anyone but its peer.
#[test]
fn udp_connected_send_recv_filters_other_senders() {
    run_clean(async {
        let a = UdpSocket::bind(loopback()).unwrap();
        let b = UdpSocket::bind(loopback()).unwrap();
        let stranger = UdpSocket::bind(loopback()).unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        stranger
            .send_to(b"not for you", a.local_addr().unwrap())
            .await
            .unwrap();
        b.send(b"for a").await.unwrap();
        let mut buf = [0; 32];
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"for a");
        a.send(b"for b").await.unwrap();
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"for b");
    });
}

/// A socket that joined a multicast group on the loopback interface gets
/// what is sent to the group; after leaving, it no longer does.
#[test]
fn udp_multicast_join_receives_and_leave_stops() {
    run_clean(async {
        let group = Ipv4Addr::new(239, 255, 42, 99);
        let receiver = UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = receiver.local_addr().unwrap().port();
        receiver
            .join_multicast_v4(group, Ipv4Addr::LOCALHOST)
            .unwrap();
        let sender = UdpSocket::bind(loopback()).unwrap();
        sender.set_multicast_if_v4(Ipv4Addr::LOCALHOST).unwrap();
        let to_group = SocketAddr::from((group, port));
        sender.send_to(b"to the group", to_group).await.unwrap();
        let mut buf = [0; 32];
        let (n, from) = receiver.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"to the group");
        assert_eq!(from, sender.local_addr().unwrap());

        receiver
            .leave_multicast_v4(group, Ipv4Addr::LOCALHOST)
            .unwrap();
        sender.send_to(b"after leaving", to_group).await.unwrap();
        // A unicast marker sent after it: if the group datagram were still
        // delivered, it would come first.
        let to_receiver = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        sender.send_to(b"marker", to_receiver).await.unwrap();
        let (n, _) = receiver.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"marker");
    });
}

/// Sending to a broadcast address needs `SO_BROADCAST`: without it the OS
/// refuses with `PermissionDenied`; with it the datagram goes out whole and
/// arrives byte-exact. The broadcast address is loopback's own
/// (127.255.255.255), so nothing leaves the machine.
#[test]
fn udp_broadcast_needs_the_flag() {
    run_clean(async {
        let receiver = UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = receiver.local_addr().unwrap().port();
        let target = SocketAddr::from((Ipv4Addr::new(127, 255, 255, 255), port));
        let socket = UdpSocket::bind(loopback()).unwrap();
        assert!(!socket.broadcast().unwrap());
        let err = socket.send_to(b"all", target).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        socket.set_broadcast(true).unwrap();
        assert!(socket.broadcast().unwrap());
        assert_eq!(socket.send_to(b"to all", target).await.unwrap(), 6);
        let mut buf = [0; 16];
        let (n, from) = receiver.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"to all");
        assert_eq!(from, socket.local_addr().unwrap());
    });
}

/// A Unix stream on a path: a megabyte each way, byte-exact, through a
/// listener bound to a fresh path.
#[test]
fn unix_stream_on_a_path_round_trips_byte_exact() {
    let path = temp_path("stream");
    let p = path.clone();
    run_clean(async move {
        let listener = UnixListener::bind(&p).unwrap();
        let server = spawn(async move {
            let (stream, _) = listener.accept().await?;
            let mut buf = vec![0; 1 << 20];
            stream.read_exact(&mut buf).await?;
            stream.write_all(&buf).await?;
            Ok::<_, std::io::Error>(())
        })
        .unwrap();
        let client = UnixStream::connect(&p).await.unwrap();
        let sent = Rng::new(3).bytes(1 << 20);
        // Written from one task, read back in another: every method takes `&self`.
        let client = std::rc::Rc::new(client);
        let writer = {
            let (client, sent) = (client.clone(), sent.clone());
            spawn(async move { client.write_all(&sent).await }).unwrap()
        };
        let mut back = vec![0; 1 << 20];
        client.read_exact(&mut back).await.unwrap();
        writer.join().await.unwrap().unwrap();
        server.join().await.unwrap().unwrap();
        assert_eq!(back, sent);
    });
    std::fs::remove_file(&path).unwrap();
}

/// Abstract names: no file appears, and the name is free again once the
/// listener is gone.
#[test]
fn unix_abstract_names_leave_no_file_and_free_on_close() {
    let name = format!("trapline-test-abstract-{}", std::process::id());
    run_clean(async move {
        let listener = UnixListener::bind_abstract(name.as_bytes()).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_abstract_name(),
            Some(name.as_bytes())
        );
        let client = UnixStream::connect_abstract(name.as_bytes()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b"abstract").await.unwrap();
        let mut buf = [0; 8];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"abstract");
        drop(listener);
        let again = UnixListener::bind_abstract(name.as_bytes()).unwrap();
        drop(again);
        let refused = UnixStream::connect_abstract(name.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    });
}

/// A stale socket file blocks `bind`, is removed by
/// `bind_replacing_stale`; a live listener and a plain file are never removed.
#[test]
fn stale_socket_files_are_removed_only_when_asked() {
    let path = temp_path("stale");
    let plain = temp_path("plain-file");
    let (p, f) = (path.clone(), plain.clone());
    run_clean(async move {
        drop(UnixListener::bind(&p).unwrap());
        assert!(p.exists(), "the socket file outlives its listener");
        let err = UnixListener::bind(&p).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);

        let live = UnixListener::bind_replacing_stale(&p).unwrap();
        let err = UnixListener::bind_replacing_stale(&p).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "a live server stays");
        // The probe that found it alive was a connection, closed at once.
        let (probe, _) = live.accept().await.unwrap();
        assert_eq!(probe.read(&mut [0; 1]).await.unwrap(), 0);
        let client = UnixStream::connect(&p).await.unwrap();
        let (server, _) = live.accept().await.unwrap();
        client.write_all(b"still the live one").await.unwrap();
        let mut buf = [0; 18];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"still the live one");

        std::fs::write(&f, b"precious").unwrap();
        let err = UnixListener::bind_replacing_stale(&f).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&f).unwrap(), b"precious");

        let err = UnixListener::bind("").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&plain).unwrap();
}

/// Unix datagrams on a path, on an abstract name and in a pair: each
/// message arrives whole and byte-exact, and a reply goes back to the
/// sender's address.
#[test]
fn unix_datagrams_round_trip_byte_exact() {
    let path = temp_path("dgram");
    let p = path.clone();
    let name = format!("trapline-test-dgram-{}", std::process::id());
    run_clean(async move {
        let server = UnixDatagram::bind(&p).unwrap();
        let client = UnixDatagram::bind_abstract(name.as_bytes()).unwrap();
        let mut rng = Rng::new(11);
        let mut buf = vec![0; 4096];
        for len in [0usize, 1, 100, 4096] {
            let msg = rng.bytes(len);
            assert_eq!(client.send_to(&msg, &p).await.unwrap(), len);
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &msg[..]);
            assert_eq!(from.as_abstract_name(), Some(name.as_bytes()));
            server.send_to_addr(&buf[..n], &from).await.unwrap();
            let n = client.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &msg[..]);
        }
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"first").await.unwrap();
        a.send(b"second").await.unwrap();
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"first");
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"second");
    });
    std::fs::remove_file(&path).unwrap();
}

/// A live listener whose backlog is full: `bind_replacing_stale` answers
/// `AddrInUse` at once instead of blocking the kernel's thread on its probe,
/// and a `UnixStream::connect` says the backlog is full. Bounded: the check
/// runs on its own thread and the test fails if it does not end.
#[test]
fn a_probe_of_a_listener_with_a_full_backlog_does_not_block() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let path = temp_path("full-backlog");
    let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    listener.bind(&SockAddr::unix(&path).unwrap()).unwrap();
    listener.listen(0).unwrap();
    // Fill the backlog: connect (never accepted) until the OS says it is full.
    let mut queued = Vec::new();
    loop {
        let client = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None).unwrap();
        match client.connect(&SockAddr::unix(&path).unwrap()) {
            Ok(()) => queued.push(client),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(queued.len() < 1024, "the backlog never filled");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let outcome = trapline::run(async move {
            let probe = UnixListener::bind_replacing_stale(&p).map(drop);
            let connect = UnixStream::connect(&p).await.map(drop);
            (probe, connect)
        });
        let _ = tx.send(outcome);
    });
    let (probe, connect) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the probe did not block")
        .unwrap();
    assert_eq!(probe.unwrap_err().kind(), ErrorKind::AddrInUse);
    let err = connect.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(err.to_string().contains("backlog is full"), "{err}");
    assert!(path.exists(), "the live listener's file stays");
    drop((queued, listener));
    std::fs::remove_file(&path).unwrap();
}
