//! Options of a UDP socket: multicast membership and delivery, broadcast,
//! TTL.
//!
//! None of them waits: each is one `setsockopt(2)`/`getsockopt(2)`. A
//! multicast group is joined per interface; the loop flag decides whether
//! this host's own datagrams to the group come back to it, which on one
//! machine (and in the tests) is how a group is heard at all.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::UdpSocket;

impl UdpSocket {
    /// Joins the IPv4 multicast group `group` on the interface with address
    /// `interface` (`UNSPECIFIED`: the OS picks).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::net::Ipv4Addr;
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("0.0.0.0:5353".parse().unwrap())?;
    ///     socket.join_multicast_v4(Ipv4Addr::new(224, 0, 0, 251), Ipv4Addr::UNSPECIFIED)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.socket.join_multicast_v4(&group, &interface)
    }

    /// Leaves an IPv4 multicast group joined with [`UdpSocket::join_multicast_v4`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::net::Ipv4Addr;
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("0.0.0.0:5353".parse().unwrap())?;
    ///     let group = Ipv4Addr::new(224, 0, 0, 251);
    ///     socket.join_multicast_v4(group, Ipv4Addr::UNSPECIFIED)?;
    ///     socket.leave_multicast_v4(group, Ipv4Addr::UNSPECIFIED)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.socket.leave_multicast_v4(&group, &interface)
    }

    /// Joins the IPv6 multicast group `group` on interface index `interface`
    /// (0: the OS picks).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::net::Ipv6Addr;
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("[::]:5353".parse().unwrap())?;
    ///     socket.join_multicast_v6("ff02::fb".parse::<Ipv6Addr>().unwrap(), 0)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.socket.join_multicast_v6(&group, interface)
    }

    /// Leaves an IPv6 multicast group joined with [`UdpSocket::join_multicast_v6`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::net::Ipv6Addr;
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("[::]:5353".parse().unwrap())?;
    ///     let group: Ipv6Addr = "ff02::fb".parse().unwrap();
    ///     socket.join_multicast_v6(group, 0)?;
    ///     socket.leave_multicast_v6(group, 0)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.socket.leave_multicast_v6(&group, interface)
    }

    /// Whether this host's own multicast datagrams loop back to it (IPv4;
    /// on by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     socket.set_multicast_loop_v4(false)?;
    ///     assert!(!socket.multicast_loop_v4()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.socket.set_multicast_loop_v4(on)
    }

    /// See [`UdpSocket::set_multicast_loop_v4`].
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     assert!(socket.multicast_loop_v4()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.socket.multicast_loop_v4()
    }

    /// The TTL of outgoing IPv4 multicast datagrams (1 by default: this network only).
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     socket.set_multicast_ttl_v4(4)?;
    ///     assert_eq!(socket.multicast_ttl_v4()?, 4);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.socket.set_multicast_ttl_v4(ttl)
    }

    /// See [`UdpSocket::set_multicast_ttl_v4`].
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     assert_eq!(socket.multicast_ttl_v4()?, 1);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.socket.multicast_ttl_v4()
    }

    /// The interface (by its IPv4 address) that outgoing multicast datagrams
    /// leave through; `UNSPECIFIED` lets the routing table choose.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     socket.set_multicast_if_v4(Ipv4Addr::LOCALHOST)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_if_v4(&self, interface: Ipv4Addr) -> io::Result<()> {
        socket2::SockRef::from(&self.socket).set_multicast_if_v4(&interface)
    }

    /// `SO_BROADCAST`: allows sending to a broadcast address. Off by default,
    /// and a send to one fails with `PermissionDenied` while it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("0.0.0.0:0".parse().unwrap())?;
    ///     socket.set_broadcast(true)?;
    ///     assert!(socket.broadcast()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.socket.set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("0.0.0.0:0".parse().unwrap())?;
    ///     assert!(!socket.broadcast()?);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.socket.broadcast()
    }

    /// Sets the TTL of outgoing unicast IPv4 datagrams.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     socket.set_ttl(9)?;
    ///     assert_eq!(socket.ttl()?, 9);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.socket.set_ttl(ttl)
    }

    /// The TTL of outgoing unicast IPv4 datagrams.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::net::UdpSocket;
    ///
    /// trapline::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     assert!(socket.ttl()? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.socket.ttl()
    }
}
