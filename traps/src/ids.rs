//! The names a kernel hands out: task ids, timeout ids, wait-queue ids, leaf tickets.
//!
//! A kernel keeps its tasks and timeouts in slabs whose keys are reused. Every id
//! that leaves the kernel therefore carries a *serial* beside its index: a late
//! event that names index 4, serial 17 never resumes the task that now lives at
//! index 4 with serial 18.
//!
//! Discussion: an id keeps its serial bit-inverted in a `NonZeroU64`, so the
//! one value it cannot hold is `u64::MAX`, a serial no kernel counts up to.
//! That spare value is what an `Option<TaskId>` uses for `None`, with no tag
//! of its own. A [`Ticket`] needs no serial at all (see its Discussion).

use std::cmp::Ordering as Order;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// A serial as the ids keep it: inverted, so that 0 is a serial like any other.
///
/// # Panics
///
/// On `u64::MAX`, which no kernel reaches: an id made from it would be a
/// kernel's bug.
const fn inverted(serial: u64) -> NonZeroU64 {
    match NonZeroU64::new(!serial) {
        Some(kept) => kept,
        None => panic!("a serial number is below u64::MAX"),
    }
}

/// The identity of a task: a slot index in its kernel plus the serial number the
/// kernel gave it at spawn. The serial alone is what people see (`task 7`).
///
/// # Examples
///
/// ```
/// use trapline_traps::TaskId;
///
/// let id = TaskId::new(3, 7);
/// assert_eq!((id.index(), id.serial()), (3, 7));
/// assert_eq!(id.to_string(), "task 7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId {
    index: u32,
    serial: NonZeroU64,
}

impl TaskId {
    /// Makes an id from a slot index and a serial number. Only a kernel does this.
    ///
    /// # Panics
    ///
    /// If `serial` is `u64::MAX`, which no kernel reaches.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::TaskId;
    ///
    /// // Slot 0, reused by a later task: the serial tells the two apart.
    /// let (old, new) = (TaskId::new(0, 1), TaskId::new(0, 2));
    /// assert_eq!(old.index(), new.index());
    /// assert_ne!(old, new);
    /// // No serial is 0, so an absent id costs no extra room.
    /// assert_eq!(size_of::<Option<TaskId>>(), size_of::<TaskId>());
    /// ```
    pub const fn new(index: u32, serial: u64) -> TaskId {
        TaskId {
            index,
            serial: inverted(serial),
        }
    }

    /// The slot the task lives in. Reused after the task ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::TaskId;
    ///
    /// let id = TaskId::new(4, 17);
    /// assert_eq!(id.index(), 4);
    /// assert_eq!(format!("{id:?}"), "TaskId(17@4)");
    /// ```
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The serial number of the task, unique in the process: no other task
    /// of any kernel has had it.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::TaskId;
    ///
    /// let id = TaskId::new(4, 17);
    /// assert_eq!(id.serial(), 17);
    /// assert_eq!(id.to_string(), "task 17", "people see the serial");
    /// ```
    pub const fn serial(self) -> u64 {
        !self.serial.get()
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({}@{})", self.serial(), self.index)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {}", self.serial())
    }
}

/// By slot, then by serial.
impl Ord for TaskId {
    fn cmp(&self, other: &TaskId) -> Order {
        (self.index, self.serial()).cmp(&(other.index, other.serial()))
    }
}

impl PartialOrd for TaskId {
    fn partial_cmp(&self, other: &TaskId) -> Option<Order> {
        Some(self.cmp(other))
    }
}

/// The identity of one `SetTimeout`: which deadline fired, so nested timeout
/// blocks can tell their own expiry from an outer one.
///
/// # Examples
///
/// ```
/// use trapline_traps::TimeoutId;
///
/// let id = TimeoutId::new(0, 12);
/// assert_eq!(id.to_string(), "timeout 12");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeoutId {
    index: u32,
    serial: NonZeroU64,
}

impl TimeoutId {
    /// Makes an id from a slot index and a serial number. Only a kernel does this.
    ///
    /// # Panics
    ///
    /// If `serial` is `u64::MAX`, which no kernel reaches.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::TimeoutId;
    ///
    /// let (outer, inner) = (TimeoutId::new(0, 1), TimeoutId::new(1, 2));
    /// assert_ne!(outer, inner);
    /// assert_eq!(format!("{inner:?}"), "TimeoutId(2@1)");
    /// assert_eq!(size_of::<Option<TimeoutId>>(), size_of::<TimeoutId>());
    /// ```
    pub const fn new(index: u32, serial: u64) -> TimeoutId {
        TimeoutId {
            index,
            serial: inverted(serial),
        }
    }

    /// The slot the timeout lives in.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::TimeoutId;
    ///
    /// assert_eq!(TimeoutId::new(3, 9).index(), 3);
    /// ```
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The serial number the kernel gave this timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::TimeoutId;
    ///
    /// let id = TimeoutId::new(3, 9);
    /// assert_eq!(id.serial(), 9);
    /// assert_eq!(id.to_string(), "timeout 9");
    /// ```
    pub const fn serial(self) -> u64 {
        !self.serial.get()
    }
}

impl fmt::Debug for TimeoutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeoutId({}@{})", self.serial(), self.index)
    }
}

impl fmt::Display for TimeoutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timeout {}", self.serial())
    }
}

/// By slot, then by serial.
impl Ord for TimeoutId {
    fn cmp(&self, other: &TimeoutId) -> Order {
        (self.index, self.serial()).cmp(&(other.index, other.serial()))
    }
}

impl PartialOrd for TimeoutId {
    fn partial_cmp(&self, other: &TimeoutId) -> Option<Order> {
        Some(self.cmp(other))
    }
}

/// A wait queue that tasks park on with `SchedWait` and are woken from with
/// `SchedWake`. Sync primitives own one each.
///
/// Ids are drawn from a process-wide counter, so a queue needs no kernel to be
/// made and can be created before any kernel runs. A kernel keeps waiters only
/// while a queue has some: an idle queue costs the kernel nothing.
///
/// # Examples
///
/// ```
/// use trapline_traps::QueueId;
///
/// let (a, b) = (QueueId::new(), QueueId::new());
/// assert_ne!(a, b);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct QueueId(u64);

impl QueueId {
    /// A queue id never handed out before in this process.
    ///
    /// # Examples
    ///
    /// A sync primitive makes its queue when it is made, kernel or no kernel:
    ///
    /// ```
    /// use trapline_traps::{in_kernel, QueueId};
    ///
    /// assert!(!in_kernel());
    /// let queue = QueueId::new();
    /// assert_ne!(queue, QueueId::new());
    /// assert_ne!(queue, QueueId::default());
    /// ```
    pub fn new() -> QueueId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        QueueId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number behind the id, for logs.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::QueueId;
    ///
    /// let queue = QueueId::new();
    /// assert_eq!(queue.to_string(), format!("queue {}", queue.get()));
    /// ```
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl Default for QueueId {
    fn default() -> QueueId {
        QueueId::new()
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "queue {}", self.0)
    }
}

/// Which leaf a park belongs to: the slot of the task that posted it and the
/// sequence number the leaf was given the first time it trapped.
///
/// A leaf keeps its ticket while it lives, so a second post from the same leaf
/// replaces its park instead of adding one, and its `Drop` can undo exactly its
/// own park.
///
/// Discussion: why a slot and no task serial. A ticket must never undo the
/// park of another task that later lives in the same slot (slots are reused).
/// The sequence number already sees to that: leaves are numbered per thread,
/// in blocks of numbers drawn for the process, so no two leaves in it share
/// one, and every park a task holds is keyed by the sequence number of the
/// leaf that posted it. A stale ticket names its slot and its own leaf's
/// number; the slot's new occupant holds no park, and no answer in its
/// inbox, under a number it never issued, so undoing the stale ticket there
/// finds nothing and does nothing. The sequence number is the generation,
/// and the ticket is 16 bytes (its number is never 0, which is what an
/// `Option<Ticket>` uses for `None`), not 24.
///
/// # Examples
///
/// ```
/// use trapline_traps::Ticket;
///
/// let t = Ticket::new(3, 42);
/// assert_eq!((t.slot(), t.seq()), (3, 42));
/// assert_eq!(size_of::<Option<Ticket>>(), 16);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Ticket {
    slot: u32,
    seq: NonZeroU64,
}

impl Ticket {
    /// The ticket of leaf `seq`, posted by the task in slot `slot`. Only the
    /// trap slot makes tickets.
    ///
    /// # Panics
    ///
    /// If `seq` is 0: sequence numbers start at 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::Ticket;
    ///
    /// assert_eq!(Ticket::new(0, 7).seq(), 7);
    /// ```
    pub const fn new(slot: u32, seq: u64) -> Ticket {
        match NonZeroU64::new(seq) {
            Some(seq) => Ticket { slot, seq },
            None => panic!("a leaf's sequence number is never 0"),
        }
    }

    /// The slot of the task whose poll posted the request.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::{TaskId, Ticket};
    ///
    /// let task = TaskId::new(5, 90);
    /// assert_eq!(Ticket::new(task.index(), 1).slot(), task.index());
    /// ```
    pub const fn slot(self) -> u32 {
        self.slot
    }

    /// The leaf's sequence number, unique in the process.
    ///
    /// # Examples
    ///
    /// ```
    /// use trapline_traps::Ticket;
    ///
    /// assert_ne!(Ticket::new(0, 1), Ticket::new(0, 2), "two leaves of one task");
    /// ```
    pub const fn seq(self) -> u64 {
        self.seq.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serials are kept inverted, yet read back, print and order as given,
    /// 0 included.
    #[test]
    fn serials_read_back_and_order_as_given() {
        let ids = [TaskId::new(1, 0), TaskId::new(0, 7), TaskId::new(0, 2)];
        assert_eq!(ids.map(TaskId::serial), [0, 7, 2]);
        let mut sorted = ids;
        sorted.sort();
        assert_eq!(
            sorted,
            [TaskId::new(0, 2), TaskId::new(0, 7), TaskId::new(1, 0)]
        );
        assert_eq!(format!("{:?}", TaskId::new(3, 0)), "TaskId(0@3)");
        assert!(TimeoutId::new(0, 9) > TimeoutId::new(0, 8));
        assert_eq!(TimeoutId::new(2, u64::MAX - 1).serial(), u64::MAX - 1);
    }

    /// A ticket is a slot and a sequence number, and an absent ticket costs
    /// no more: a sleeping task carries one in its leaf.
    #[test]
    fn a_ticket_is_two_words() {
        assert_eq!(size_of::<Ticket>(), 16);
        assert_eq!(size_of::<Option<Ticket>>(), 16);
    }
}
