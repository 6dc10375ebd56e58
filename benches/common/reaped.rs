//! A child process that is killed and reaped when dropped: whatever error
//! ends the parent's side early, no child of a bench is left running.

use std::process::Child;

/// Owns a child; dropping it kills the child if it still runs, then waits.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        // Already waited for: `try_wait` gives the saved status, nothing to do.
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}
