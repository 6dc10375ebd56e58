//! Name resolution that does not block the kernel.
//!
//! `getaddrinfo(3)` has no non-blocking form: it may read files, ask a DNS
//! server and wait for the answer. Called on the kernel's thread it would
//! stop every task. So a name is looked up by `run_in_thread`, on the
//! bounded pool of blocking workers, and the task that asked waits at that
//! job's `FutureWait` trap; the worker wakes the task's `Waker`, which
//! reaches the kernel through its remote queue.
//!
//! Anything that is already an address (`SocketAddr`, `"127.0.0.1:80"`,
//! `(ip, port)`) never leaves the kernel's thread.
//!
//! Discussion: because the wait is a trap, a cancellation or a
//! `timeout_after` limit reaches a task waiting for a slow DNS answer. A
//! worker cannot be stopped mid-call; when the waiter has gone its answer is
//! simply dropped. A lookup by name always waits at its trap at least once
//! (the job is handed to the pool only after the task has parked), and once
//! it has waited, an interrupt wins over an answer that arrived at the same
//! moment: a task cancelled while it waited sees `Cancelled`, whichever of
//! the two the kernel saw first. A name lookup is so always a cancellation
//! point.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use trapline_traps::{Leaf, Trap};

use crate::blocking::{run_in_thread_at, RunInThread};
use crate::JoinError;

/// Something [`crate::net::TcpStream::connect`] (and [`lookup_host`]) can
/// turn into socket addresses: an address, or a `host:port` name to look up.
///
/// Implemented for `SocketAddr` (and its V4/V6 forms), `(IpAddr, u16)`,
/// `(&str, u16)`, `(String, u16)`, `&str`, `String` and slices of addresses.
///
/// # Examples
///
/// ```
/// use trapline::net::ToAddrs;
///
/// fn takes(_: impl ToAddrs) {}
/// takes("localhost:7000");
/// takes(("localhost", 7000));
/// takes("127.0.0.1:7000".parse::<std::net::SocketAddr>().unwrap());
/// ```
pub trait ToAddrs {
    /// The addresses, or the name that must be looked up to find them.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::ToAddrs;
    ///
    /// // An address is taken as is; a bad port is an error at once.
    /// assert!("127.0.0.1:80".to_addrs().is_ok());
    /// assert!("localhost:http".to_addrs().is_err());
    /// ```
    fn to_addrs(&self) -> io::Result<Addrs>;
}

/// What a [`ToAddrs`] turned into: addresses, or a name still to look up.
///
/// # Examples
///
/// ```
/// use trapline::net::ToAddrs;
///
/// let addrs = "[::1]:80".to_addrs()?;
/// println!("{addrs:?}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Addrs(Target);

#[derive(Debug, Clone)]
enum Target {
    Known(Vec<SocketAddr>),
    Name(String, u16),
}

impl ToAddrs for SocketAddr {
    fn to_addrs(&self) -> io::Result<Addrs> {
        Ok(Addrs(Target::Known(vec![*self])))
    }
}

impl ToAddrs for SocketAddrV4 {
    fn to_addrs(&self) -> io::Result<Addrs> {
        SocketAddr::V4(*self).to_addrs()
    }
}

impl ToAddrs for SocketAddrV6 {
    fn to_addrs(&self) -> io::Result<Addrs> {
        SocketAddr::V6(*self).to_addrs()
    }
}

impl ToAddrs for (IpAddr, u16) {
    fn to_addrs(&self) -> io::Result<Addrs> {
        SocketAddr::from(*self).to_addrs()
    }
}

impl ToAddrs for (Ipv4Addr, u16) {
    fn to_addrs(&self) -> io::Result<Addrs> {
        SocketAddr::from(*self).to_addrs()
    }
}

impl ToAddrs for (Ipv6Addr, u16) {
    fn to_addrs(&self) -> io::Result<Addrs> {
        SocketAddr::from(*self).to_addrs()
    }
}

impl ToAddrs for [SocketAddr] {
    fn to_addrs(&self) -> io::Result<Addrs> {
        Ok(Addrs(Target::Known(self.to_vec())))
    }
}

impl ToAddrs for (&str, u16) {
    fn to_addrs(&self) -> io::Result<Addrs> {
        let (host, port) = *self;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return (ip, port).to_addrs();
        }
        Ok(Addrs(Target::Name(host.to_owned(), port)))
    }
}

impl ToAddrs for (String, u16) {
    fn to_addrs(&self) -> io::Result<Addrs> {
        (self.0.as_str(), self.1).to_addrs()
    }
}

impl ToAddrs for str {
    fn to_addrs(&self) -> io::Result<Addrs> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return addr.to_addrs();
        }
        let invalid = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{self:?} is not HOST:PORT with a numeric port"),
            )
        };
        let (host, port) = self.rsplit_once(':').ok_or_else(invalid)?;
        let port = port.parse::<u16>().map_err(|_| invalid())?;
        (host, port).to_addrs()
    }
}

impl ToAddrs for String {
    fn to_addrs(&self) -> io::Result<Addrs> {
        self.as_str().to_addrs()
    }
}

impl<T: ToAddrs + ?Sized> ToAddrs for &T {
    fn to_addrs(&self) -> io::Result<Addrs> {
        (**self).to_addrs()
    }
}

/// Looks `host` up without blocking the kernel; returns every address it
/// names, in the resolver's order.
///
/// An address is returned at once; a name is resolved on a blocking worker thread
/// while the task waits at a `FutureWait` trap (cancellable, timeout-able).
/// An unknown name fails with the resolver's error.
///
/// # Examples
///
/// ```
/// use trapline::net::lookup_host;
///
/// trapline::run(async {
///     let addrs = lookup_host("localhost:7000").await?;
///     assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 7000));
///     assert_eq!(lookup_host("10.0.0.1:53").await?, ["10.0.0.1:53".parse().unwrap()]);
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn lookup_host<A: ToAddrs>(host: A) -> impl Future<Output = io::Result<Vec<SocketAddr>>> {
    let location = Location::caller();
    let target = host.to_addrs();
    async move { lookup(target?, location).await }
}

/// Turns `addrs` into addresses, looking a name up on a blocking worker.
pub(super) async fn lookup(
    addrs: Addrs,
    location: &'static Location<'static>,
) -> io::Result<Vec<SocketAddr>> {
    match addrs.0 {
        Target::Known(addrs) => Ok(addrs),
        Target::Name(host, port) => {
            let job = run_in_thread_at(
                move || {
                    (host.as_str(), port)
                        .to_socket_addrs()
                        .map(|addrs| addrs.collect())
                },
                location,
            );
            Lookup {
                job,
                check: Leaf::at(location),
                waited: false,
            }
            .await
        }
    }
}

/// The waiting side of a lookup: the pool job's own `FutureWait` wait, and
/// a second leaf that, once the lookup has waited, lets an interrupt win over
/// an answer that came at the same moment (see the Discussion above).
struct Lookup {
    job: RunInThread<io::Result<Vec<SocketAddr>>>,
    check: Leaf,
    waited: bool,
}

impl Future for Lookup {
    type Output = io::Result<Vec<SocketAddr>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.waited {
            // Posted only to learn of an interrupt, and withdrawn at once.
            let interrupted = this.check.trap(cx, Trap::FutureWait);
            this.check.done();
            if let Err(e) = interrupted {
                return Poll::Ready(Err(e.into()));
            }
        }
        match Pin::new(&mut this.job).poll(cx) {
            Poll::Pending => {
                this.waited = true;
                Poll::Pending
            }
            Poll::Ready(Ok(answer)) => Poll::Ready(answer),
            Poll::Ready(Err(JoinError::Interrupted(e))) => Poll::Ready(Err(e.into())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(io::Error::other(format!("name lookup: {e}")))),
        }
    }
}
