//! A one-value mailbox for two tasks on one kernel, written with traps only:
//! the ping-pong of the kernel bench and of `examples/kernel_costs.rs`.
//!
//! `send` leaves the value and wakes the queue's one waiter (`SchedWake`);
//! `recv` takes the value if it is there, else parks in the queue
//! (`SchedWait`) and looks again when woken.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use trapline::traps::{sched_wake, Leaf, QueueId, Trap, TrapError};

/// One value at a time, between two tasks of one kernel.
pub struct Mailbox {
    value: Cell<Option<u64>>,
    queue: QueueId,
}

impl Mailbox {
    pub fn new() -> Mailbox {
        Mailbox {
            value: Cell::new(None),
            queue: QueueId::new(),
        }
    }

    /// Leaves `v` and wakes the task waiting for it, if one is.
    pub fn send(&self, v: u64) -> Result<(), TrapError> {
        self.value.set(Some(v));
        sched_wake(self.queue, 1).map(drop)
    }

    /// The next value, waiting for it if it is not there yet.
    pub fn recv(&self) -> Recv<'_> {
        Recv {
            mailbox: self,
            leaf: Leaf::new(),
        }
    }
}

/// Waits in the mailbox's queue until a value is there.
pub struct Recv<'a> {
    mailbox: &'a Mailbox,
    leaf: Leaf,
}

impl Future for Recv<'_> {
    type Output = Result<u64, TrapError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(v) = this.mailbox.value.take() {
            this.leaf.done();
            return Poll::Ready(Ok(v));
        }
        let queue = this.mailbox.queue;
        match this.leaf.trap(cx, Trap::SchedWait { queue }) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
