//! The two awaitable calls of a `UniversalQueue`: leaves that trap with
//! `FutureWait` and keep their place in line by ticket.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use trapline_traps::{Leaf, Trap, TrapError};

use super::UniversalQueue;

/// The future of [`UniversalQueue::get`].
///
/// # Examples
///
/// ```
/// trapline::run(async {
///     let queue = trapline::UniversalQueue::unbounded();
///     queue.try_put(1).unwrap();
///     let get: trapline::universal_queue::Get<'_, i32> = queue.get();
///     assert_eq!(get.await?, 1);
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    pub(super) queue: &'a UniversalQueue<T>,
    pub(super) ticket: Option<u64>,
    pub(super) leaf: Leaf,
}

impl<T> fmt::Debug for Get<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get").field("queue", self.queue).finish()
    }
}

impl<T> Future for Get<'_, T> {
    type Output = Result<T, TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut s = this.queue.lock();
        if let Some(item) = s.items.pop_front() {
            if let Some(t) = this.ticket.take() {
                s.getters.leave(t);
            }
            this.queue.made_room(s);
            this.leaf.done();
            return Poll::Ready(Ok(item));
        }
        // Keeps its place in line if it still has one.
        this.ticket = Some(s.getters.wait(this.ticket, cx.waker()));
        drop(s);
        match this.leaf.trap(cx, Trap::FutureWait) {
            Ok(()) => Poll::Pending,
            Err(e) => {
                this.abandon();
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<T> Get<'_, T> {
    /// Leaves the line; if a `put` had already taken our waker for an item
    /// we will not take, wakes the next getter in our place.
    fn abandon(&mut self) {
        let Some(t) = self.ticket.take() else { return };
        let mut s = self.queue.lock();
        let woken = !s.getters.leave(t);
        let next = (woken && !s.items.is_empty())
            .then(|| s.getters.take_one())
            .flatten();
        drop(s);
        if let Some(w) = next {
            w.wake();
        }
    }
}

impl<T> Drop for Get<'_, T> {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// The future of [`UniversalQueue::put`].
///
/// # Examples
///
/// ```
/// trapline::run(async {
///     let queue = trapline::UniversalQueue::unbounded();
///     let put: trapline::universal_queue::Put<'_, i32> = queue.put(5);
///     put.await?;
///     assert_eq!(queue.len(), 1);
///     Ok::<(), trapline::TrapError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Put<'a, T> {
    pub(super) queue: &'a UniversalQueue<T>,
    pub(super) item: Option<T>,
    pub(super) ticket: Option<u64>,
    pub(super) leaf: Leaf,
}

impl<T> fmt::Debug for Put<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put").field("queue", self.queue).finish()
    }
}

impl<T> Unpin for Put<'_, T> {}

impl<T> Future for Put<'_, T> {
    type Output = Result<(), TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut s = this.queue.lock();
        if !s.full() {
            if let Some(t) = this.ticket.take() {
                s.putters.leave(t);
            }
            let Some(item) = this.item.take() else {
                return Poll::Ready(Ok(())); // polled after it completed
            };
            s.items.push_back(item);
            this.queue.made_item(s);
            this.leaf.done();
            return Poll::Ready(Ok(()));
        }
        this.ticket = Some(s.putters.wait(this.ticket, cx.waker()));
        drop(s);
        match this.leaf.trap(cx, Trap::FutureWait) {
            Ok(()) => Poll::Pending,
            Err(e) => {
                this.abandon();
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<T> Put<'_, T> {
    /// Leaves the line; passes on a wake for room it will not use.
    fn abandon(&mut self) {
        let Some(t) = self.ticket.take() else { return };
        let mut s = self.queue.lock();
        let woken = !s.putters.leave(t);
        let next = (woken && !s.full()).then(|| s.putters.take_one()).flatten();
        drop(s);
        if let Some(w) = next {
            w.wake();
        }
    }
}

impl<T> Drop for Put<'_, T> {
    fn drop(&mut self) {
        self.abandon();
    }
}
