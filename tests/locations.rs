//! Every leaf constructor reports the line of the *user's* await, however
//! many layers of library code stand between (`#[track_caller]` does
//! nothing on an `async fn`, so each layer passes the `Location` down).

mod util;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use trapline::{
    clock, sleep, sleep_until, spawn, timeout_after, yield_now, Hooks, Kernel, Parked, TaskId,
};

const HOUR: Duration = Duration::from_secs(3600);

/// A park as the test compares it: (trap, file, line).
type Where = (String, String, u32);

/// The parks of each task's last suspension.
#[derive(Default)]
struct LastParks(RefCell<HashMap<TaskId, Vec<Where>>>);

impl Hooks for LastParks {
    fn suspended(&self, task: TaskId, parks: &[Parked], _at: Instant) {
        let parks = parks
            .iter()
            .map(|p| {
                let at = p.location;
                (p.trap.name().to_string(), at.file().to_string(), at.line())
            })
            .collect();
        self.0.borrow_mut().insert(task, parks);
    }
}

impl LastParks {
    #[track_caller]
    fn assert_parked(&self, task: TaskId, expected: &[(&str, u32)]) {
        let got = self.0.borrow().get(&task).cloned().unwrap_or_default();
        let want: Vec<Where> = expected
            .iter()
            .map(|(trap, line)| (trap.to_string(), file!().to_string(), *line))
            .collect();
        assert_eq!(got, want);
    }
}

/// Runs `test` on a kernel with the hooks.
fn with_hooks<F: std::future::Future<Output = std::io::Result<()>>>(
    test: impl FnOnce(Rc<LastParks>) -> F,
) {
    let parks = Rc::new(LastParks::default());
    let mut kernel = Kernel::builder().hooks(parks.clone()).build().unwrap();
    kernel.run(test(parks)).unwrap().unwrap();
    util::assert_clean(&kernel.stats());
}

/// Time: `sleep`, `sleep_until`, and `timeout_after`, whose wrapper waits
/// at the same line as the sleep inside it.
#[test]
fn time_leaves_report_the_await_line() {
    with_hooks(|parks| async move {
        let (a, line_a) = (spawn(async { sleep(HOUR).await }), line!());
        let (b, line_b) = (spawn(async { sleep_until(clock()? + HOUR).await }), line!());
        let (c, line_c) = (spawn(timeout_after(HOUR, sleep(HOUR))), line!());
        yield_now().await?;
        let (a, b, c) = (a?, b?, c?);
        parks.assert_parked(a.id(), &[("Sleep", line_a)]);
        parks.assert_parked(b.id(), &[("Sleep", line_b)]);
        parks.assert_parked(c.id(), &[("Sleep", line_c), ("FutureWait", line_c)]);
        a.cancel().await?.unwrap_err();
        b.cancel().await?.unwrap_err();
        let _ = c.cancel().await?;
        Ok(())
    });
}

/// Tasks: `join`, `cancel` (which waits with a join), `yield_now`.
#[test]
fn task_leaves_report_the_await_line() {
    with_hooks(|parks| async move {
        let sleeper = Rc::new(spawn(async { sleep(HOUR).await })?);
        let s = sleeper.clone();
        let (joiner, join_line) = (spawn(async move { s.join().await }), line!());
        let (yielder, yield_line) = (spawn(async { yield_now().await }), line!());
        yield_now().await?;
        let (joiner, yielder) = (joiner?, yielder?);
        parks.assert_parked(joiner.id(), &[("Join", join_line)]);
        parks.assert_parked(yielder.id(), &[("Yield", yield_line)]);
        yielder.join().await??;
        joiner.cancel().await?.unwrap_err();
        let s = sleeper.clone();
        let (canceller, cancel_line) = (spawn(async move { s.cancel().await }), line!());
        yield_now().await?;
        let canceller = canceller?;
        parks.assert_parked(canceller.id(), &[("Join", cancel_line)]);
        canceller.join().await??.unwrap_err();
        Ok(())
    });
}

/// Sockets: `accept`, `read`, `read_exact`, and `write_all` on a full send
/// buffer.
#[test]
fn socket_leaves_report_the_await_line() {
    with_hooks(|parks| async move {
        let listener = trapline::net::TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let (near, far) = util::tcp_pair().await?;
        let far = Rc::new(far);

        let (acceptor, accept_line) = (spawn(async move { listener.accept().await }), line!());
        let f = far.clone();
        let (reader, read_line) = (spawn(async move { f.read(&mut [0; 8]).await }), line!());
        yield_now().await?;
        let (acceptor, reader) = (acceptor?, reader?);
        parks.assert_parked(acceptor.id(), &[("ReadWait", accept_line)]);
        parks.assert_parked(reader.id(), &[("ReadWait", read_line)]);
        acceptor.cancel().await?.unwrap_err();
        reader.cancel().await?.unwrap_err();

        let f = far.clone();
        let exact = async move { f.read_exact(&mut [0; 8]).await };
        let exact_line = line!() - 1;
        let exact = spawn(exact);
        let (out, _unread) = util::tcp_pair().await?;
        let big = vec![7u8; 16 << 20]; // more than the socket buffers hold
        let (writer, write_line) = (spawn(async move { out.write_all(&big).await }), line!());
        yield_now().await?;
        let (exact, writer) = (exact?, writer?);
        parks.assert_parked(exact.id(), &[("ReadWait", exact_line)]);
        parks.assert_parked(writer.id(), &[("WriteWait", write_line)]);
        exact.cancel().await?.unwrap_err();
        writer.cancel().await?.unwrap_err();
        drop(near);
        Ok(())
    });
}
