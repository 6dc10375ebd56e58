//! hyper 1.x on trapline: the runtime traits hyper asks of an executor (the
//! `hyper` feature).
//!
//! hyper brings no runtime of its own. It asks for three things, and each is
//! a few lines over traps:
//!
//! - **I/O**: [`HyperIo`] gives hyper's `rt::Read` and `rt::Write` to any
//!   `futures-io` stream (`TcpStream`, `UnixStream`, the owned halves), so
//!   every read and write hyper makes tries the syscall and traps only on
//!   `WouldBlock`, like every trapline leaf.
//! - **an executor**: [`HyperExecutor`] spawns what hyper hands it (HTTP/2
//!   streams, a client connection's driver) as trapline tasks. They need not
//!   be `Send`.
//! - **a timer**: [`HyperTimer`] turns hyper's sleeps (header read timeouts,
//!   keep-alive) into `Sleep` traps on the kernel's timer heap.
//!
//! Discussion: hyper's `rt::Read` hands out a buffer that may be
//! uninitialised, and filling it directly takes `unsafe`; the facade forbids
//! `unsafe`, so `HyperIo` reads into a small buffer of its own and copies.
//! On the HTTP benchmark in the README that copy is one `memcpy` of a
//! request's bytes; the syscalls dominate.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};

/// The size of the buffer [`HyperIo`] reads into before it copies into hyper's.
const SCRATCH: usize = 16 * 1024;

/// A stream as hyper sees it: `hyper::rt::Read` and `hyper::rt::Write` over
/// any `futures-io` stream of trapline's.
///
/// # Examples
///
/// ```no_run
/// use hyper::server::conn::http1;
/// use hyper::service::service_fn;
/// use trapline::hyper_rt::{HyperIo, HyperTimer};
/// use trapline::net::TcpListener;
///
/// trapline::run(async {
///     let listener = TcpListener::bind("127.0.0.1:8080".parse().unwrap())?;
///     loop {
///         let (stream, _) = listener.accept().await?;
///         trapline::spawn(async move {
///             let service = service_fn(|_req| async {
///                 let body = http_body_util::Full::new(bytes::Bytes::from_static(b"hello"));
///                 Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
///             });
///             http1::Builder::new()
///                 .timer(HyperTimer)
///                 .serve_connection(HyperIo::new(stream), service)
///                 .await
///         })?;
///     }
///     # #[allow(unreachable_code)]
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct HyperIo<T> {
    inner: T,
    scratch: Vec<u8>,
}

impl<T> HyperIo<T> {
    /// Wraps `inner` for hyper.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::hyper_rt::HyperIo;
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let io = HyperIo::new(a);
    ///     assert!(io.get_ref().peer_addr()?.is_unnamed());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: T) -> HyperIo<T> {
        HyperIo {
            inner,
            scratch: Vec::new(),
        }
    }

    /// The wrapped stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::hyper_rt::HyperIo;
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let io = HyperIo::new(a);
    ///     io.get_ref().shutdown(std::net::Shutdown::Both)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Unwraps the stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline::hyper_rt::HyperIo;
    /// use trapline::net::UnixStream;
    ///
    /// trapline::run(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let a: UnixStream = HyperIo::new(a).into_inner();
    ///     a.write_all(b"plain again").await
    /// })??;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for HyperIo<T> {
    #[track_caller]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining().min(SCRATCH);
        if this.scratch.len() < want {
            this.scratch.resize(want, 0);
        }
        match Pin::new(&mut this.inner).poll_read(cx, &mut this.scratch[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&this.scratch[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
    #[track_caller]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    #[track_caller]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

/// hyper's executor on trapline: each future hyper hands over becomes a
/// task of the running kernel.
///
/// # Examples
///
/// ```
/// use hyper::rt::Executor;
/// use trapline::hyper_rt::HyperExecutor;
///
/// trapline::run(async {
///     let (tx, rx) = futures::channel::oneshot::channel();
///     HyperExecutor.execute(async move { tx.send(7).unwrap() });
///     assert_eq!(rx.await, Ok(7));
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperExecutor;

impl<F> hyper::rt::Executor<F> for HyperExecutor
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        if let Err(e) = crate::spawn(async move {
            future.await;
        }) {
            // hyper's executor cannot report an error: it is logged.
            log::error!(target: "trapline::kernel", "hyper executor: cannot spawn: {e}");
        }
    }
}

/// hyper's timer on trapline: sleeps are `Sleep` traps on the kernel's clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use hyper::rt::Timer;
/// use trapline::hyper_rt::HyperTimer;
///
/// trapline::run(async {
///     let t0 = trapline::clock()?;
///     HyperTimer.sleep(Duration::from_millis(2)).await;
///     assert!(trapline::clock()? >= t0 + Duration::from_millis(2));
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperTimer;

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::sleep_until(deadline)))
    }
}

/// A trapline `Sleep` as hyper's `rt::Sleep`.
///
/// Discussion: hyper's sleeps end with `()`. A trapline sleep can also end
/// with `Cancelled` or `TimedOut`; those end this sleep too, and since
/// interrupts are level-triggered, the next wait of the task meets them
/// again, where they can be reported.
struct HyperSleep(crate::Sleep);

impl Future for HyperSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx).map(|_| ())
    }
}

impl hyper::rt::Sleep for HyperSleep {}
