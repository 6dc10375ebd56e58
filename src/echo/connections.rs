//! The connections of an echo service: counted while they live, kept so
//! the service can end them, and handed to the caller when the service
//! stops accepting ([`Open`]).
//!
//! Discussion: a connection's task takes its own entry out of the map when
//! it ends (its [`Registered`] guard), so the map holds only live tasks.
//! Whoever holds the map last — the service, or the caller's [`Open`] —
//! cancels what is left when it is dropped; only an `async` end can also
//! wait for them, so the service and [`Open::cancel`] do that explicitly.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::EchoStats;
use crate::{shield, JoinError, JoinHandle, TrapError};

/// One active connection, counted in [`EchoStats::active`] while it lives.
pub(super) struct Active(pub(super) Rc<EchoStats>);

impl Active {
    pub(super) fn new(stats: Rc<EchoStats>) -> Active {
        stats.active.set(stats.active.get() + 1);
        stats.peak.set(stats.peak.get().max(stats.active.get()));
        Active(stats)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
    }
}

pub(super) type Tasks = Rc<RefCell<HashMap<u64, JoinHandle<()>>>>;

/// The connection tasks still running, so the service can end them. If it
/// is dropped instead of ended (a kernel shutting down, a `select` that
/// lost), the drop cancels every task left, and they end at their next trap.
#[derive(Default)]
pub(super) struct Connections {
    next: Cell<u64>,
    pub(super) tasks: Tasks,
}

impl Connections {
    pub(super) fn next_key(&self) -> u64 {
        self.next.set(self.next.get() + 1);
        self.next.get()
    }

    pub(super) fn insert(&self, key: u64, task: JoinHandle<()>) {
        // A task that already ended (it cannot have: it starts at the next
        // pass) would leave a handle behind until the end.
        self.tasks.borrow_mut().insert(key, task);
    }

    /// Cancels every connection task and waits for each to end.
    pub(super) async fn end(&self) {
        let tasks: Vec<JoinHandle<()>> = self.tasks.borrow_mut().drain().map(|(_, t)| t).collect();
        // The service itself may be cancelled or timed out: its waits for
        // the connections are shielded from that.
        shield(async {
            for task in &tasks {
                let _ = task.cancel().await;
            }
        })
        .await;
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.try_borrow() {
            for task in tasks.values() {
                let _ = crate::traps::cancel(task.id());
            }
        }
    }
}

/// Takes a connection's task out of [`Connections`] when the task ends.
pub(super) struct Registered {
    pub(super) connections: Tasks,
    pub(super) key: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.connections.try_borrow_mut() {
            tasks.remove(&self.key);
        }
    }
}

/// The connections still open when a service stopped accepting
/// ([`serve_until`](super::serve_until)): wait for them to finish, or cancel
/// them. Dropping it cancels those left (without waiting).
///
/// # Examples
///
/// ```no_run
/// use std::rc::Rc;
/// use std::time::Duration;
/// use trapline::echo::{serve_until, EchoConfig, EchoStats};
/// use trapline::net::TcpListener;
/// use trapline::{sleep, timeout_after};
///
/// trapline::run(async {
///     let listener = TcpListener::bind("127.0.0.1:7000".parse().unwrap())?;
///     let stats = Rc::new(EchoStats::default());
///     // Accept for a minute, then give the open connections 5 s more.
///     let stop = sleep(Duration::from_secs(60));
///     let (_, open) = serve_until(listener, EchoConfig::default(), stats, stop).await?;
///     let _ = timeout_after(Duration::from_secs(5), open.finished()).await;
///     open.cancel().await;
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Open {
    pub(super) connections: Connections,
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open").field("len", &self.len()).finish()
    }
}

impl Open {
    /// How many connections are still open.
    ///
    /// # Examples
    ///
    /// See [`Open`].
    pub fn len(&self) -> usize {
        self.connections.tasks.borrow().len()
    }

    /// Whether every connection has ended.
    ///
    /// # Examples
    ///
    /// See [`Open`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every connection has ended by itself. Cancellable and
    /// timeout-able; an interrupted wait leaves every connection in place.
    ///
    /// # Examples
    ///
    /// See [`Open`].
    pub async fn finished(&self) -> Result<(), TrapError> {
        loop {
            let next = self.connections.tasks.borrow().keys().next().copied();
            let Some(key) = next else {
                return Ok(());
            };
            let Some(task) = self.connections.tasks.borrow_mut().remove(&key) else {
                continue;
            };
            if let Err(JoinError::Interrupted(e)) = task.join().await {
                // Still running: back in the map, to be cancelled later.
                self.connections.tasks.borrow_mut().insert(key, task);
                return Err(e);
            }
        }
    }

    /// Cancels every connection still open and waits for each to end
    /// (shielded: this waits even in a cancelled task).
    ///
    /// # Examples
    ///
    /// See [`Open`].
    pub async fn cancel(&self) {
        self.connections.end().await;
    }
}
