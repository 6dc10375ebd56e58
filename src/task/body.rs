//! A task's body: the user's future, polled under `catch_unwind`, and what
//! is done with its end.
//!
//! The kernel sees a task as one boxed future that produces nothing. The
//! facade wraps the user's future in a [`Body`] that catches a panic of its
//! poll, hands the output (or the panic's message) to an `on_end` callback,
//! and only then lets the task end. Joining and task groups are built on that
//! callback; the kernel knows nothing of outputs.
//!
//! Discussion: why a future of its own and not an `async` block. The body is
//! the larger part of a small task's memory, and one exists per task. An
//! `async move` block that pins its captured future (`pin!(future)`) moves
//! it into a local of the block, and the compiler keeps room for both the
//! capture and the local: wrapping a 56-byte sleep (as it was then) cost
//! 168 bytes. [`Body`]
//! holds the future once, beside the callback (8 bytes when it owns one
//! `Rc`), and `pin-project-lite` gives the pinned field without `unsafe`.

use std::borrow::Cow;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use trapline_traps::{TaskId, TrapError};

use super::panic_message;

pin_project! {
    /// The future the kernel holds for a task: the user's future and what
    /// to do with its end until it ends, then nothing.
    ///
    /// Dropped unfinished (its kernel shut down, or it never ended), it drops
    /// the user's future first, then `on_end` uncalled, so what `on_end`
    /// owns can tell that ending in its own `Drop`.
    ///
    /// `on_end` is called once, when the future ends; it is an `FnMut`
    /// only because it is called in place, before the future is dropped.
    ///
    /// Discussion: an enum, not two `Option`s. The user's future often has
    /// no spare value to say "gone" (an `async` block has none), and an
    /// `Option` around it then takes a word of its own. `on_end` owns a
    /// pointer at least (the join slot, a group's notice), and a pointer is
    /// never null: the enum says `Ended` with that value, so the body is the
    /// future and the callback, nothing more.
    #[project = BodyProj]
    pub(crate) enum Body<F, C> {
        Running {
            #[pin]
            future: F,
            on_end: C,
        },
        Ended,
    }
}

impl<F, C> Body<F, C> {
    fn new(future: F, on_end: C) -> Body<F, C> {
        Body::Running { future, on_end }
    }
}

impl<F, C> Future for Body<F, C>
where
    F: Future,
    C: FnMut(Result<F::Output, String>),
{
    type Output = ();

    /// Discussion: the order at the end. `on_end` runs first, while the
    /// user's future still exists (whoever waits has the answer before any
    /// destructor of the task runs); then the future is dropped, and
    /// `on_end` after it, *before* a caught panic is raised again: their
    /// destructors run as after any ending, not during an unwind, where a
    /// panic of theirs would abort the process. The panic then goes on to
    /// the kernel, so the task ends as panicked for hooks and the log.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let BodyProj::Running { future, on_end } = self.as_mut().project() else {
            return Poll::Ready(()); // ended before: the kernel polls no more
        };
        let ended = match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(panic) => Err(panic_message(panic)),
        };
        let panicked = ended.as_ref().err().cloned();
        on_end(ended);
        self.set(Body::Ended);
        if let Some(msg) = panicked {
            std::panic::resume_unwind(Box::new(msg));
        }
        Poll::Ready(())
    }
}

/// Spawns `future` as a task and hands its end to `on_end`: its output, or
/// the message of its panic. The one place a task's panic is caught; task
/// groups build on it too.
///
/// A task dropped unfinished never calls `on_end`; it drops it, so what
/// `on_end` owns can tell that ending in its own `Drop`.
pub(crate) fn spawn_then<F, C>(
    future: F,
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
    on_end: C,
) -> Result<TaskId, TrapError>
where
    F: Future + 'static,
    C: FnMut(Result<F::Output, String>) + 'static,
{
    let body = Body::new(future, on_end);
    trapline_traps::spawn_named(Box::pin(body), name, location)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::task::Waker;

    /// A future that logs its polls and its drop, and ends on its second poll.
    struct Logged {
        log: Rc<RefCell<Vec<&'static str>>>,
        polls: u8,
    }

    impl Future for Logged {
        type Output = u8;
        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            self.polls += 1;
            self.log.borrow_mut().push("poll");
            if self.polls == 2 {
                Poll::Ready(42)
            } else {
                Poll::Pending
            }
        }
    }

    impl Drop for Logged {
        fn drop(&mut self) {
            self.log.borrow_mut().push("future dropped");
        }
    }

    /// Polled without a kernel: `on_end` hears the output before the future
    /// is dropped, and a body polled after its end stays ended.
    #[test]
    fn on_end_runs_before_the_future_is_dropped() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let seen = log.clone();
        let mut body = Box::pin(Body::new(
            Logged {
                log: log.clone(),
                polls: 0,
            },
            move |ended: Result<u8, String>| {
                seen.borrow_mut().push(match ended {
                    Ok(42) => "on_end 42",
                    _ => "on_end other",
                })
            },
        ));
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(body.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(body.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(body.as_mut().poll(&mut cx), Poll::Ready(()));
        drop(body);
        assert_eq!(
            *log.borrow(),
            ["poll", "poll", "on_end 42", "future dropped"]
        );
    }

    /// Dropped unfinished: the future goes first, then `on_end`, uncalled.
    #[test]
    fn dropped_unfinished_drops_future_then_on_end() {
        struct Told(Rc<RefCell<Vec<&'static str>>>);
        impl Drop for Told {
            fn drop(&mut self) {
                self.0.borrow_mut().push("on_end dropped");
            }
        }
        let log = Rc::new(RefCell::new(Vec::new()));
        let told = Told(log.clone());
        let mut body = Box::pin(Body::new(
            Logged {
                log: log.clone(),
                polls: 0,
            },
            move |_: Result<u8, String>| {
                told.0.borrow_mut().push("on_end called");
            },
        ));
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(body.as_mut().poll(&mut cx), Poll::Pending);
        drop(body);
        assert_eq!(*log.borrow(), ["poll", "future dropped", "on_end dropped"]);
    }

    /// The body holds the future once, beside one pointer: an `async`
    /// block wrapping the same sleep took three times the sleep's size.
    /// An `async` block has no spare value to say "ended" and the body
    /// needs no word for it either.
    #[test]
    fn a_body_is_its_future_and_one_pointer() {
        let body = std::mem::size_of::<Body<crate::Sleep, Rc<()>>>();
        assert_eq!(body, std::mem::size_of::<crate::Sleep>() + 8);
        assert_eq!(body, 40, "a sleeping task's body: glibc's 48-byte block");
        let waiting = async {
            let buf = [0u8; 100];
            crate::yield_now().await.map(|()| buf[0])
        };
        let future = std::mem::size_of_val(&waiting);
        assert_eq!(
            std::mem::size_of_val(&Some(waiting)),
            future + 8,
            "no niche"
        );
        let body = Body::new(
            async {
                let buf = [0u8; 100];
                crate::yield_now().await.map(|()| buf[0])
            },
            Rc::new(()),
        );
        assert_eq!(std::mem::size_of_val(&body), future + 8);
    }
}
