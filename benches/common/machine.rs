//! The machine a bench ran on, for the line every results file opens with.
//!
//! Figures from a shared machine mean little without it: the CPU model, how
//! many cores are online, the Linux release, and the load average when the
//! run began (a busy neighbour shows there).

/// "CPU model, N cores, Linux release, load average L".
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    // The cores online, whatever this thread is pinned to (unlike
    // `available_parallelism`, which counts only the cores it may run on).
    // SAFETY: sysconf only reads a configuration value.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    format!("{cpu}, {cores} cores, Linux {kernel}, load average {load} at the start")
}
