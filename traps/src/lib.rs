//! # trapline-traps: the system-call ABI of trapline
//!
//! An `async fn` compiles to a state machine, and polling the outermost one
//! runs the whole chain of awaits down to a *leaf*. In trapline the leaves do
//! not talk to a reactor and do not stash wakers: they **trap**. A leaf that
//! cannot go on writes a request — [`Trap::ReadWait`], [`Trap::Sleep`], … —
//! into the thread's trap slot and returns `Pending`. That `Pending` climbs
//! the chain to the kernel, which takes the request and parks the task under
//! it. This crate is the whole interface between the two sides.
//!
//! Principles:
//!
//! - **One closed vocabulary.** [`Trap`] lists every request there is. What is
//!   not in it cannot be asked of a kernel; a new capability is built from
//!   traps, or the vocabulary grows on purpose.
//! - **Microkernel.** Timeouts, joins and sync primitives are library code
//!   over traps; the kernel only parks, resumes and keeps time.
//! - **Readiness carries no value.** A resumed leaf looks again for itself.
//!   Spurious polls are always harmless.
//! - **Interrupts are delivered at the trap.** Cancellation and timeouts reach
//!   a task as errors from the leaf that was about to wait ([`Inbox`]).
//! - **No kernel here.** This crate knows nothing of mio, tokens or slabs and
//!   depends on nothing but `std`. Anyone can write a loop against it
//!   ([`Handler`], [`enter`], [`leave`]).
//!
//! # Layout
//!
//! - `trap`: the [`Trap`] enum, its [`Reply`] and the [`Post`] a leaf leaves.
//! - `slot`: the thread-local trap slot, [`install`], [`enter`], [`leave`], [`call`].
//! - `scope`: timeout scopes, [`enter_scope`], and what a timeout block asks of them.
//! - `leaf`: [`Leaf`], the state every leaf future embeds.
//! - `inbox`: [`Inbox`], a task's pending interrupts and answers.
//! - `calls`: typed wrappers over the immediate traps.
//! - `ids`: [`TaskId`], [`TimeoutId`], [`QueueId`], [`Ticket`].
//! - `error`: [`TrapError`] and its trip through `io::Error`.
//! - `shown`: the time trap requests are shown against (the kernel's clock
//!   inside its run, the real clock elsewhere).

#![forbid(unsafe_code)]
#![deny(missing_docs, rust_2018_idioms)]
#![warn(missing_debug_implementations, clippy::undocumented_unsafe_blocks)]

mod calls;
mod error;
mod ids;
mod inbox;
mod leaf;
mod scope;
mod shown;
mod slot;
mod trap;

pub use calls::{
    cancel, clock, current, io_release, sched_wake, set_timeout, spawn, spawn_named, unset_timeout,
};
pub use error::TrapError;
pub use ids::{QueueId, TaskId, Ticket, TimeoutId};
pub use inbox::{Delivery, Inbox};
pub use leaf::Leaf;
pub use scope::{
    enclosing_taken_since, enter_scope, enter_shield, innermost_scope, pending_interrupt,
    shielded_waits, taken_mark, timeout_delivered, Scope, Shield,
};
pub use shown::{show_times_against, shown_now};
pub use slot::{
    call, enter, enter_unparked, in_kernel, install, leave, running, with_current_inbox, Handler,
    Installed, INTERRUPTS_PER_POLL,
};
pub use trap::{Post, Reply, SpawnRequest, TaskFuture, Trap};
