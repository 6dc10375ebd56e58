//! Heap blocks per task: what a spawned task leaves on the heap while it
//! waits, counted by a global allocator that watches this test's own thread.
//!
//! `benches/resources.rs` measures resident memory against tokio; these tests
//! pin down the blocks behind it, so that a change that makes every task
//! heavier (a wrapper that stores the future twice, a slot that grows past
//! its allocator block) fails here instead of showing up later as a worse
//! ratio. The kernel's tables (task slab, timer heap, ready queue) grow by
//! doubling and are not counted: only blocks under 1 KiB are.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

/// Counts the small blocks this thread holds while armed.
struct Counting;

/// Blocks at least this large are tables, not per-task blocks.
const TABLE: usize = 1024;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static BLOCKS: Cell<isize> = const { Cell::new(0) };
    static BYTES: Cell<isize> = const { Cell::new(0) };
}

fn note(layout: Layout, sign: isize) {
    if layout.size() >= TABLE {
        return;
    }
    // `try_with`: the allocator runs while thread-locals are torn down, too.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            BLOCKS.set(BLOCKS.get() + sign);
            BYTES.set(BYTES.get() + sign * layout.size() as isize);
        }
    });
}

// SAFETY: every call goes straight to `System`; the counting beside it
// touches only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout, 1);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(layout, -1);
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(layout, -1);
        note(
            Layout::from_size_align(new_size, layout.align()).expect("valid layout"),
            1,
        );
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Starts counting this thread's small blocks; returns where the count stood.
fn arm() -> (isize, isize) {
    ARMED.set(true);
    (BLOCKS.get(), BYTES.get())
}

/// Small blocks and their bytes held now beyond `since`; stops counting.
fn disarm(since: (isize, isize)) -> (isize, isize) {
    ARMED.set(false);
    (BLOCKS.get() - since.0, BYTES.get() - since.1)
}

const TASKS: isize = 1000;
const HOUR: Duration = Duration::from_secs(3600);

/// A detached task asleep holds two small blocks, 80 bytes in all: its join
/// slot (40) and its body with the sleep in it (40: glibc's 48-byte block);
/// its park lives in its record. The body was once an `async` block that
/// kept the sleep twice (168 bytes), then 56 bytes while a sleep kept its
/// deadline as an `Instant` and its ticket a task id; the slot was a
/// `RefCell` (56), the park a block of its own (88). Its end frees them all.
#[test]
fn a_sleeping_task_holds_two_blocks_of_80_bytes() {
    let mut asleep = (0, 0);
    let since = trapline::run(async {
        trapline::sleep(Duration::from_millis(1)).await?; // the kernel's own blocks
        let since = arm();
        for _ in 0..TASKS {
            drop(trapline::spawn(trapline::sleep(HOUR))?);
        }
        trapline::yield_now().await?; // every task runs to its sleep first
        asleep = disarm(since);
        Ok::<_, trapline::TrapError>(arm())
    })
    .expect("a kernel")
    .expect("no trap error");
    let ended = disarm(since);
    assert!(
        asleep.0 <= 2 * TASKS && asleep.1 <= 80 * TASKS,
        "{} blocks, {} bytes per task",
        asleep.0 as f64 / TASKS as f64,
        asleep.1 as f64 / TASKS as f64
    );
    assert!(
        asleep.0 >= TASKS,
        "each task holds a block at least: {asleep:?}"
    );
    assert!(
        ended.0 <= -asleep.0,
        "the kernel's end frees every task's blocks: {ended:?} after {asleep:?}"
    );
}

/// A task whose future is an `async` block holds its body in one block the
/// size of that future plus two words (whether it has ended, and the join
/// slot), not twice the future.
#[test]
fn a_body_holds_its_future_once() {
    let mut waiting = (0, 0);
    let future_size = std::cell::Cell::new(0);
    trapline::run(async {
        trapline::sleep(Duration::from_millis(1)).await?;
        let since = arm();
        for _ in 0..TASKS {
            let future = async {
                let mut buf = [0u8; 200];
                trapline::sleep(HOUR).await?;
                buf[0] = 1;
                Ok::<u8, trapline::TrapError>(buf[0])
            };
            future_size.set(std::mem::size_of_val(&future));
            drop(trapline::spawn(future)?);
        }
        trapline::yield_now().await?;
        waiting = disarm(since);
        Ok::<(), trapline::TrapError>(())
    })
    .expect("a kernel")
    .expect("no trap error");
    let per_task = waiting.1 / TASKS;
    let body = per_task - 40; // less its slot
    assert!(
        future_size.get() > 200 && body <= future_size.get() as isize + 16,
        "body {body} bytes for a {}-byte future",
        future_size.get()
    );
}

/// Small blocks held, on average, per sleeping task joined by `joiners` tasks, once
/// every joiner waits in its join.
fn blocks_joined_by(joiners: usize) -> isize {
    let mut blocks = (0, 0);
    trapline::run(async {
        trapline::sleep(Duration::from_millis(1)).await?;
        let since = arm();
        let mut handles = Vec::new();
        for _ in 0..TASKS {
            let sleeper = std::rc::Rc::new(trapline::spawn(trapline::sleep(HOUR))?);
            for _ in 0..joiners {
                let sleeper = sleeper.clone();
                drop(trapline::spawn(async move { sleeper.join().await })?);
            }
            handles.push(sleeper);
        }
        trapline::yield_now().await?; // every joiner runs to its join
        blocks = disarm(since);
        Ok::<_, trapline::TrapError>(())
    })
    .expect("a kernel")
    .expect("no trap error");
    // Rounded: the kernel's own tables move by a block or two.
    (blocks.0 as f64 / TASKS as f64).round() as isize
}

/// A task's first joiner is kept in its record: a sleeping task joined by
/// one task holds nothing beyond its two blocks and its shared handle,
/// beside the joiner's own two (body and slot). Joiners after the first go
/// to a side list: one block more for a task that has them.
#[test]
fn a_first_joiner_costs_its_task_no_block() {
    assert_eq!(blocks_joined_by(1), 2 + 1 + 2);
    assert_eq!(blocks_joined_by(2), 2 + 1 + 2 * 2 + 1);
}
