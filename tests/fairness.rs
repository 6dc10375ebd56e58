//! Yield fairness: a task that yields in a loop steps aside for everyone
//! else. Each pass of the loop polls exactly the tasks that were ready when it
//! began and looks at I/O before every pass, so a yielder goes to the back of
//! the line and can neither starve I/O nor run twice before another ready
//! task runs once.

mod util;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

use trapline::net::{TcpListener, TcpStream};
use trapline::{spawn, yield_now};
use util::run_clean;

/// The most yields the busy task makes before giving up on the I/O task.
const YIELD_CAP: u64 = 1_000_000;

type Log = Rc<RefCell<Vec<&'static str>>>;

/// A task spinning on `yield_now` does not starve a TCP round trip: the
/// I/O task connects to an echo task, writes, reads the echo back exactly
/// and raises a flag long before the spinner's cap of a million yields.
/// The spinner yielded while the round trip was in flight (between the
/// write and the echo), and the recorded events come in exactly the
/// causal order: spinner starts, I/O starts, I/O sends, I/O gets its echo,
/// spinner sees the flag and stops.
#[test]
fn yielding_task_does_not_starve_io() -> io::Result<()> {
    let (yields, yields_in_flight, events) = run_clean(async {
        let log: Log = Rc::default();
        let done = Rc::new(Cell::new(false));
        let yields = Rc::new(Cell::new(0_u64));

        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let addr = listener.local_addr()?;
        let server = spawn(async move {
            let (stream, _) = listener.accept().await?;
            let mut buf = [0; 64];
            let n = stream.read(&mut buf).await?;
            stream.write_all(&buf[..n]).await?;
            Ok::<_, io::Error>(())
        })?;

        let spinner = spawn({
            let (log, done, yields) = (log.clone(), done.clone(), yields.clone());
            async move {
                log.borrow_mut().push("spinner start");
                while !done.get() {
                    if yields.get() >= YIELD_CAP {
                        log.borrow_mut().push("spinner gave up");
                        return Ok(());
                    }
                    yield_now().await?;
                    yields.set(yields.get() + 1);
                }
                log.borrow_mut().push("spinner stop");
                Ok::<_, trapline::TrapError>(())
            }
        })?;

        let round_trip = spawn({
            let (log, done, yields) = (log.clone(), done.clone(), yields.clone());
            async move {
                log.borrow_mut().push("io start");
                let stream = TcpStream::connect(addr).await?;
                stream.write_all(b"ping").await?;
                log.borrow_mut().push("io sent");
                let sent_at = yields.get();
                let mut buf = [0; 4];
                stream.read_exact(&mut buf).await?;
                assert_eq!(&buf, b"ping");
                log.borrow_mut().push("io echoed");
                done.set(true);
                Ok::<_, io::Error>(yields.get() - sent_at)
            }
        })?;

        let yields_in_flight = round_trip.join().await??;
        server.join().await??;
        spinner.join().await??;
        let events = log.borrow().clone();
        Ok::<_, io::Error>((yields.get(), yields_in_flight, events))
    })?;
    assert_eq!(
        events,
        [
            "spinner start",
            "io start",
            "io sent",
            "io echoed",
            "spinner stop"
        ]
    );
    assert!(
        yields < YIELD_CAP,
        "the spinner hit its cap: {yields} yields"
    );
    assert!(
        yields_in_flight >= 1,
        "the spinner must have yielded while the echo was in flight"
    );
    Ok(())
}

/// Two tasks that each record their name and yield, five rounds each,
/// alternate strictly: A, B, A, B, ... A yield sends a task to the back of
/// the ready queue, behind the other one.
#[test]
fn two_yielding_tasks_alternate_strictly() -> io::Result<()> {
    let order = run_clean(async {
        let log: Log = Rc::default();
        let mut tasks = Vec::new();
        for name in ["A", "B"] {
            let log = log.clone();
            tasks.push(spawn(async move {
                for _ in 0..5 {
                    log.borrow_mut().push(name);
                    yield_now().await?;
                }
                Ok::<_, trapline::TrapError>(())
            })?);
        }
        for task in tasks {
            task.join().await??;
        }
        let order = log.borrow().clone();
        Ok::<_, io::Error>(order)
    })?;
    assert_eq!(order, ["A", "B", "A", "B", "A", "B", "A", "B", "A", "B"]);
    Ok(())
}

/// Three yielders keep their strict rotation (A, B, C, A, B, C, ...) while an
/// I/O event wakes a fourth task in the middle of it: A writes a byte in its
/// second round, and the reader parked on the other end of the connection
/// runs exactly once, after that write, without letting any yielder run
/// twice in a row.
#[test]
fn yielders_keep_rotation_while_io_wakes_a_reader() -> io::Result<()> {
    let order = run_clean(async {
        let log: Log = Rc::default();
        let (client, server) = util::tcp_pair().await?;
        let reader = spawn({
            let log = log.clone();
            async move {
                let mut buf = [0; 1];
                server.read_exact(&mut buf).await?;
                log.borrow_mut().push("R");
                Ok::<_, io::Error>(buf)
            }
        })?;
        let client = Rc::new(client);
        let mut tasks = Vec::new();
        for name in ["A", "B", "C"] {
            let (log, client) = (log.clone(), client.clone());
            tasks.push(spawn(async move {
                for round in 0..5 {
                    log.borrow_mut().push(name);
                    if name == "A" && round == 1 {
                        log.borrow_mut().push("write");
                        client.write_all(b"x").await?;
                    }
                    yield_now().await?;
                }
                Ok::<_, io::Error>(())
            })?);
        }
        for task in tasks {
            task.join().await??;
        }
        assert_eq!(reader.join().await??, *b"x");
        let order = log.borrow().clone();
        Ok::<_, io::Error>(order)
    })?;
    let yielders: Vec<&str> = order
        .iter()
        .copied()
        .filter(|e| ["A", "B", "C"].contains(e))
        .collect();
    let expected: Vec<&str> = (0..5).flat_map(|_| ["A", "B", "C"]).collect();
    assert_eq!(yielders, expected, "full log: {order:?}");
    let at = |what| order.iter().position(|e| *e == what);
    assert_eq!(order.iter().filter(|e| **e == "R").count(), 1, "{order:?}");
    assert_eq!(
        at("write"),
        Some(4),
        "A writes in its second round: {order:?}"
    );
    assert!(
        at("R") > at("write"),
        "the reader runs after the write: {order:?}"
    );
    Ok(())
}
