//! TaskGroup, how its tasks end: a panic whose future also panics when
//! dropped, members whose cleanup spawns siblings, a scope body that fails,
//! a group dropped outside a join, and many members ending.

mod util;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use trapline::{spawn, TaskFailure, TaskGroup};
use util::{entries, log, push, run_clean, Log};

/// A group task whose poll panics and whose destructor panics too: the
/// group's wrapper drops the future after the first panic was caught, not
/// during an unwind (where the second panic would abort the process). The
/// group records the poll's panic and the kernel goes on.
#[test]
fn group_poll_panic_then_destructor_panic_does_not_abort() {
    /// Traps once, then panics when polled again; panics when dropped.
    struct Doomed {
        log: Log,
        polled: bool,
    }
    impl Future for Doomed {
        type Output = Result<(), ()>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if !self.polled {
                self.polled = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            panic!("poll boom");
        }
    }
    impl Drop for Doomed {
        fn drop(&mut self) {
            let panicking = std::thread::panicking();
            push(&self.log, format!("drop, panicking: {panicking}"));
            panic!("destructor boom");
        }
    }
    let log = log();
    let out = run_clean({
        let log = log.clone();
        async move {
            let group = TaskGroup::<(), ()>::new();
            let id = group
                .spawn(Doomed {
                    log: log.clone(),
                    polled: false,
                })
                .unwrap();
            let joined = group.join().await;
            push(&log, "owner goes on");
            let after = spawn(async { "still running" }).unwrap();
            (id, joined, after.join().await)
        }
    });
    let (id, joined, after) = out;
    assert_eq!(
        joined,
        Err(trapline::GroupError::Task {
            id,
            failure: TaskFailure::Panicked("poll boom".into())
        })
    );
    assert_eq!(after, Ok("still running"));
    assert_eq!(entries(&log), ["drop, panicking: false", "owner goes on"]);
}
