//! Unix domain socket addresses: a path in the filesystem, or (Linux) a
//! name in the abstract namespace.
//!
//! A path address is a file: binding makes it, and it stays after the
//! socket closes, until someone removes it. An abstract address is only a
//! name, written with a leading NUL byte in `sockaddr_un`; it has no file,
//! vanishes with the last socket bound to it, and never goes stale.
//!
//! Discussion: a path that itself starts with a NUL byte would silently turn
//! into an abstract address, so the path functions refuse it; abstract names
//! go through their own functions, and the two cannot be confused.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

/// The address of the file at `path`.
pub(super) fn path_addr(path: &Path) -> io::Result<SockAddr> {
    match path.as_os_str().as_bytes().first() {
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty path is not a Unix socket address",
        )),
        Some(0) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a path starting with NUL: use the *_abstract functions for abstract names",
        )),
        Some(_) => SockAddr::unix(path),
    }
}

/// The abstract address `name` (Linux only).
pub(super) fn abstract_addr(name: &[u8]) -> io::Result<SockAddr> {
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(0);
    bytes.extend_from_slice(name);
    SockAddr::unix(OsStr::from_bytes(&bytes))
}

/// A non-blocking, close-on-exec Unix socket of type `ty`.
pub(super) fn socket(ty: Type) -> io::Result<Socket> {
    Socket::new(Domain::UNIX, ty.nonblocking().cloexec(), None)
}
