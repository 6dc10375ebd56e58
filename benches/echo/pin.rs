//! Pinning a thread to one core, so server and load generator never share one.

/// Pins the calling thread to `core` (modulo the cores there are). A failure
/// (a container that forbids it) is reported once and the bench goes on.
pub fn pin_to(core: usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: `set` is a plain bit set on the stack, zeroed before use, and
    // `sched_setaffinity(0, ..)` only reads it for the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core % cores, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        eprintln!(
            "note: could not pin to core {core}: {}",
            std::io::Error::last_os_error()
        );
    }
}
