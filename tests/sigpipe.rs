//! Writing to a stream whose peer has gone is `BrokenPipe`, and the process
//! lives: the writes use `send(2)` with `MSG_NOSIGNAL`, so no `SIGPIPE` is
//! raised. This file is its own test binary because it puts `SIGPIPE` back
//! to its default action (terminate), which Rust's runtime had set to
//! ignore: with a plain `write(2)` the test process would be killed.

mod util;

use std::future::poll_fn;
use std::io::{ErrorKind, IoSlice};

use trapline::net::UnixStream;
use util::run_clean;

/// Puts `SIGPIPE` back to terminating the process.
fn default_sigpipe() {
    // SAFETY: `signal` with `SIG_DFL` installs no handler code; the call
    // only changes this process's disposition for one signal.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(previous, libc::SIG_ERR);
}

/// Every way of writing a Unix stream, to a peer that has closed: each one
/// fails with `BrokenPipe`, and the test is still there to see it.
#[test]
fn writing_to_a_closed_unix_peer_is_broken_pipe_not_sigpipe() {
    default_sigpipe();
    run_clean(async {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert_eq!(
            a.write(b"x").await.unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
        assert_eq!(
            a.write_all(b"xy").await.unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
        let polled = poll_fn(|cx| a.poll_write(cx, b"x")).await;
        assert_eq!(polled.unwrap_err().kind(), ErrorKind::BrokenPipe);
        let bufs = [IoSlice::new(b"x"), IoSlice::new(b"y")];
        let polled = poll_fn(|cx| a.poll_write_vectored(cx, &bufs)).await;
        assert_eq!(polled.unwrap_err().kind(), ErrorKind::BrokenPipe);
    });
}
