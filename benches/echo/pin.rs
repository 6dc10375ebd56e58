//! Pinning a thread to one core, so server and load generator never share one.

/// Pins the calling thread to `core` (modulo the cores there are). A failure
/// (a container that forbids it) is reported once and the bench goes on.
pub fn pin_to(core: usize) {
    let cores = online_cores();
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

/// The cores online, whatever this thread is pinned to (unlike
/// `available_parallelism`, which counts only the cores it may run on).
pub fn online_cores() -> usize {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}
