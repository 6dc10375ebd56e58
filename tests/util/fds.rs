//! This process's fds: how many are open, the highest number, and the
//! `RLIMIT_NOFILE` limit — for tests that open thousands of sockets or run
//! a child out of fds.

/// The soft and hard `RLIMIT_NOFILE` of this process.
pub fn fd_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the call to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit");
    (lim.rlim_cur, lim.rlim_max)
}

/// Sets the soft `RLIMIT_NOFILE` of this process to exactly `soft` (lower
/// or higher), keeping the hard limit.
pub fn set_fd_limit(soft: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: fd_limit().1 as libc::rlim_t,
    };
    // SAFETY: `lim` is a valid rlimit; setrlimit only reads it.
    match unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Makes sure this process may open `need` fds: raises the soft limit to
/// `need` if it is lower (never lowers it). Fails, saying why, when the
/// hard limit is below `need`.
pub fn allow_fds(need: u64) -> Result<(), String> {
    let (soft, hard) = fd_limit();
    if soft >= need {
        return Ok(());
    }
    if hard < need {
        return Err(format!(
            "RLIMIT_NOFILE hard limit is {hard}, {need} fds are needed"
        ));
    }
    set_fd_limit(need).map_err(|e| format!("raising RLIMIT_NOFILE to {need}: {e}"))
}

/// The highest fd number open in this process.
pub fn highest_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(2)
}

/// How many fds this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
