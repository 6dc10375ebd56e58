//! Real `Waker`s for tasks, and the path a wake takes back to its kernel.
//!
//! A task's waker carries no pointer: its data word packs the kernel's id, the
//! task's slot index and the low bits of its serial, and its vtable is one
//! `static`, so `Waker::will_wake` recognises a task's own waker and cloning
//! one costs a copy.
//!
//! Discussion: `Waker` is `Send`, so a wake can come from anywhere. On the
//! kernel's own thread it goes on a local list, no lock. From any other thread
//! it goes through the kernel's *remote* queue, a mutex-guarded list plus a
//! `mio::Waker` that interrupts `epoll_wait`. The first push onto an empty
//! queue rings the `mio::Waker`; a push onto a non-empty queue need not,
//! because the kernel has not drained since the push that rang. No wake is
//! ever lost: at worst one rings twice.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{RawWaker, RawWakerVTable, Waker};

use trapline_traps::TaskId;

// The data word is split 16/24/24; it needs a 64-bit pointer.
const _: () = assert!(usize::BITS == 64, "trapline needs a 64-bit target");

/// The most tasks one kernel holds at once: slot indexes fit in 24 bits.
pub(crate) const MAX_TASKS: usize = 1 << 24;
const LOW24: u32 = (1 << 24) - 1;

/// A wake addressed to a task: which kernel, which slot, which serial (low 24 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WakeRef {
    pub kernel: u16,
    pub index: u32,
    pub serial24: u32,
}

impl WakeRef {
    pub(crate) fn new(kernel: u16, task: TaskId) -> WakeRef {
        WakeRef {
            kernel,
            index: task.index(),
            serial24: (task.serial() & u64::from(LOW24)) as u32,
        }
    }

    /// Whether this wake is addressed to `task` (and not to an older occupant of its slot).
    pub(crate) fn names(self, task: TaskId) -> bool {
        self.index == task.index() && u64::from(self.serial24) == task.serial() & u64::from(LOW24)
    }

    fn pack(self) -> usize {
        (self.kernel as usize) << 48 | (self.index as usize) << 24 | self.serial24 as usize
    }

    fn unpack(data: usize) -> WakeRef {
        WakeRef {
            kernel: (data >> 48) as u16,
            index: ((data >> 24) as u32) & LOW24,
            serial24: (data as u32) & LOW24,
        }
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

fn raw(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn clone(data: *const ()) -> RawWaker {
    raw(data)
}

fn wake(data: *const ()) {
    deliver(WakeRef::unpack(data.addr()));
}

fn drop(_: *const ()) {}

/// The waker of `task` in kernel `kernel`.
pub(crate) fn task_waker(wake: WakeRef) -> Waker {
    let data = std::ptr::without_provenance::<()>(wake.pack());
    // SAFETY: the vtable's functions treat the data word as a plain integer:
    // they never dereference it, clone is a copy and drop does nothing, so
    // every RawWaker contract (thread safety included) holds for any value.
    unsafe { Waker::from_raw(raw(data)) }
}

/// The wakes a kernel receives from other threads.
#[derive(Debug)]
pub(crate) struct Remote {
    queue: Mutex<Vec<WakeRef>>,
    pending: AtomicBool,
    bell: mio::Waker,
}

impl Remote {
    pub(crate) fn new(bell: mio::Waker) -> Remote {
        Remote {
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            bell,
        }
    }

    fn push(&self, wake: WakeRef) {
        let was_empty = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let was_empty = q.is_empty();
            q.push(wake);
            self.pending.store(true, Ordering::Release);
            was_empty
        };
        if was_empty {
            // A failed ring leaves the wake queued; the kernel drains the
            // queue on every pass, so it is delayed at worst, never lost.
            let _ = self.bell.wake();
        }
    }

    /// Interrupts the kernel's `epoll_wait` (for the injection queue beside
    /// this one, see `remote`). A failed ring is harmless: the queues are
    /// looked at on every pass.
    pub(crate) fn ring(&self) {
        let _ = self.bell.wake();
    }

    /// Moves every queued wake into `into`.
    #[inline]
    pub(crate) fn drain(&self, into: &mut Vec<WakeRef>) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        into.append(&mut q);
        self.pending.store(false, Ordering::Release);
    }
}

/// The kernels of this process, by id, for wakes from other threads.
///
/// Discussion: ids are handed out round-robin, not first-free. Task serials
/// restart in every kernel, so a waker kept from a finished kernel would name
/// a task of the next kernel given the same id; cycling through all 65,536
/// ids before reusing one keeps such a stale waker pointing at nobody.
struct Kernels {
    slots: Vec<Option<Arc<Remote>>>,
    next: usize,
}

static KERNELS: Mutex<Kernels> = Mutex::new(Kernels {
    slots: Vec::new(),
    next: 0,
});

const KERNEL_IDS: usize = 1 << 16;

/// Registers a kernel's remote queue; returns the kernel's id.
pub(crate) fn register(remote: Arc<Remote>) -> std::io::Result<u16> {
    let mut all = KERNELS.lock().unwrap_or_else(PoisonError::into_inner);
    for step in 0..KERNEL_IDS {
        let at = (all.next + step) % KERNEL_IDS;
        if at >= all.slots.len() {
            all.slots.resize(at + 1, None);
        }
        if all.slots[at].is_none() {
            all.slots[at] = Some(remote);
            all.next = (at + 1) % KERNEL_IDS;
            return Ok(at as u16);
        }
    }
    Err(std::io::Error::other(
        "trapline: too many kernels alive in this process (65536)",
    ))
}

/// Forgets a kernel: later wakes addressed to it are dropped.
pub(crate) fn unregister(id: u16) {
    let mut all = KERNELS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(slot) = all.slots.get_mut(id as usize) {
        *slot = None;
    }
}

thread_local! {
    /// The kernel running on this thread, if any, and its local wakes.
    static LOCAL: Local = const {
        Local { kernel: Cell::new(None), wakes: RefCell::new(Vec::new()) }
    };
}

struct Local {
    kernel: Cell<Option<u16>>,
    wakes: RefCell<Vec<WakeRef>>,
}

fn deliver(wake: WakeRef) {
    let local = LOCAL.try_with(|l| {
        if l.kernel.get() == Some(wake.kernel) {
            l.wakes.borrow_mut().push(wake);
            true
        } else {
            false
        }
    });
    if local != Ok(true) {
        let remote = {
            let all = KERNELS.lock().unwrap_or_else(PoisonError::into_inner);
            all.slots.get(wake.kernel as usize).cloned().flatten()
        };
        if let Some(remote) = remote {
            remote.push(wake);
        }
    }
}

/// Marks kernel `id` as running on this thread until the guard drops.
pub(crate) fn enter_local(id: u16) -> LocalGuard {
    LOCAL.with(|l| {
        l.kernel.set(Some(id));
        l.wakes.borrow_mut().clear();
    });
    LocalGuard
}

/// See [`enter_local`].
#[derive(Debug)]
pub(crate) struct LocalGuard;

impl Drop for LocalGuard {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|l| {
            l.kernel.set(None);
            l.wakes.borrow_mut().clear();
        });
    }
}

/// Moves this thread's local wakes into `into`.
pub(crate) fn drain_local(into: &mut Vec<WakeRef>) {
    LOCAL.with(|l| {
        let mut wakes = l.wakes.borrow_mut();
        // Usually none: a task's leaves resume it without its waker.
        if !wakes.is_empty() {
            into.append(&mut wakes);
        }
    });
}
