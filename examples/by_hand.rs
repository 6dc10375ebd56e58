//! What `await` really yields: a chain of `async fn`s driven by hand, with no
//! kernel, printing every trap request its leaves deposit. Then the same
//! chain on the real kernel.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example by_hand
//! ```
//!
//! The loop below is a complete, if naive, trapline kernel. It installs a
//! `Handler` that answers the immediate traps the chain uses (`Clock`,
//! `IoRelease`), polls the chain with a do-nothing waker, and after each
//! `Pending` takes the list of requests from the trap slot. It honours a
//! `Sleep` by sleeping the thread until the deadline. It honours `ReadWait`
//! and `WriteWait` by not honouring them at all: it waits a millisecond and
//! polls again. That works, because readiness carries no value — a leaf
//! polled again simply retries its syscall and traps again if it must. The
//! real kernel differs only in knowing *when* to poll again.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use trapline::net::TcpStream;
use trapline::traps::{self, Handler, Inbox, Post, Reply, TaskId, Ticket, Trap, TrapError};

/// The chain: three levels of `async fn` down to the leaves.
async fn conversation(addr: SocketAddr) -> std::io::Result<String> {
    let stream = connect(addr).await?;
    nap().await?;
    let mut buf = [0; 64];
    let n = stream.read(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    TcpStream::connect(addr).await
}

async fn nap() -> Result<(), TrapError> {
    trapline::sleep(Duration::from_millis(20)).await?;
    trapline::sleep(Duration::from_millis(10)).await
}

/// The answers to immediate traps that this loop supports.
struct ByHand;

impl Handler for ByHand {
    fn call(&self, _current: Option<TaskId>, trap: Trap) -> Result<Reply, TrapError> {
        match trap {
            Trap::Clock => Ok(Reply::Time(Instant::now())),
            Trap::IoRelease { .. } => Ok(Reply::Unit), // nothing registered, nothing to forget
            other => Err(TrapError::Unsupported(other.name())),
        }
    }

    fn unpost(&self, _ticket: Ticket) {} // this loop keeps no parks
}

fn by_hand(addr: SocketAddr) -> std::io::Result<String> {
    let _installed = traps::install(Rc::new(ByHand)).map_err(std::io::Error::other)?;
    let task = TaskId::new(0, 1);
    let mut chain = pin!(conversation(addr));
    let mut cx = Context::from_waker(Waker::noop());
    let mut posts: Vec<Post> = Vec::new();
    // Leaves are named by their ticket's sequence number; number them 1, 2,
    // 3... in the order they first trap, for reading.
    let mut leaves: Vec<u64> = Vec::new();
    let start = Instant::now();
    for poll in 1.. {
        traps::enter(task, Inbox::new());
        let result = chain.as_mut().poll(&mut cx);
        let _inbox = traps::leave(&mut posts);
        if let Poll::Ready(out) = result {
            println!("poll {poll:>2}: Ready after {:?}", start.elapsed());
            println!(
                "{poll} polls for {} leaves: every ReadWait after the first was a wasted \
                 poll, because this loop cannot know when the fd is ready; the kernel \
                 asks epoll, and polls the task once the fd is ready.",
                leaves.len()
            );
            return out;
        }
        let requests: Vec<String> = posts
            .iter()
            .map(|p| {
                if !leaves.contains(&p.seq) {
                    leaves.push(p.seq);
                }
                let leaf = leaves.iter().position(|s| *s == p.seq).unwrap_or(0) + 1;
                format!("{} (leaf #{leaf}, at {})", p.trap, p.location)
            })
            .collect();
        println!("poll {poll:>2}: Pending, slot = [{}]", requests.join(", "));
        // Honour the requests, naively.
        for post in posts.drain(..) {
            match post.trap {
                Trap::Sleep { deadline } => {
                    std::thread::sleep(deadline.saturating_duration_since(Instant::now()))
                }
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
    unreachable!("the loop returns when the chain is ready")
}

/// A plain thread that greets whoever connects, a little later.
fn greeter() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for mut peer in listener.incoming().take(2).flatten() {
            std::thread::sleep(Duration::from_millis(40));
            let _ = peer.write_all(b"hello from a plain thread");
        }
    });
    Ok(addr)
}

fn main() -> std::io::Result<()> {
    let addr = greeter()?;
    println!("-- by hand: poll, read the trap slot, honour it, poll again --");
    let said = by_hand(addr)?;
    println!("read {said:?}\n");

    println!(
        "-- the same chain on the trapline kernel (RUST_LOG=trapline=trace to see its traps) --"
    );
    env_logger::init();
    let said = trapline::run(conversation(addr))??;
    println!("read {said:?}");
    Ok(())
}
