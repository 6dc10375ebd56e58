//! `RUST_LOG=trapline=trace`: one line per trap and per resume, saying which
//! task, which trap, which fd or deadline, resumed with what, and where.

mod util;

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use trapline::task::Builder;
use trapline::{sleep, timeout_after, yield_now, TrapError};
use util::trace;

/// A scripted pair of tasks: a sleeper cancelled at its trap, a reader
/// resumed by its fd's event. The exact trap lines, in order.
#[test]
fn trace_names_task_trap_argument_and_resume() {
    let file = file!();
    let (lines, expected) = util::run_clean(async {
        // Set up outside the capture: a connect may or may not wait.
        let (near, far) = util::tcp_pair().await?;
        let fd = far.as_raw_fd();
        trace::start();
        let main = trapline::current()?.serial();

        let nap = async { sleep(Duration::from_secs(3600)).await };
        let (sleeper, spawn_line) = (Builder::new().name("sleeper").spawn(nap)?, line!());
        let (sleep_line, s) = (line!() - 2, sleeper.id().serial());
        let yield_line = line!() + 1;
        yield_now().await?;
        let cancel_line = line!() + 1;
        sleeper.cancel().await?.unwrap_err();

        let read = async move { far.read(&mut [0; 8]).await };
        let (reader, reader_line) = (trapline::spawn(read)?, line!());
        let r = reader.id().serial();
        yield_now().await?;
        near.write_all(b"hi").await?;
        let join_line = line!() + 1;
        assert_eq!(reader.join().await??, 2);
        let lines = trace::stop();

        let (second_yield, read_line) = (join_line - 3, reader_line - 1);
        let expected = [
            format!("task {main} spawn task {s} \"sleeper\" at {file}:{spawn_line}"),
            format!("task {main} trap Yield at {file}:{yield_line}"),
            format!("task {s} trap Sleep(in …) at {file}:{sleep_line}"),
            format!("task {main} cancel task {s}"),
            format!("task {s} resume Sleep: task cancelled (trapped at {file}:{sleep_line})"),
            format!("task {main} trap Join(task {s}) at {file}:{cancel_line}"),
            format!(
                "task {main} resume Join(task {s}): task ended (trapped at {file}:{cancel_line})"
            ),
            format!("task {main} spawn task {r} at {file}:{reader_line}"),
            format!("task {main} trap Yield at {file}:{second_yield}"),
            format!("task {r} trap ReadWait(fd {fd}) at {file}:{read_line}"),
            format!("task {main} trap Join(task {r}) at {file}:{join_line}"),
            format!("task {r} resume ReadWait(fd {fd}): readable (trapped at {file}:{read_line})"),
            format!(
                "task {main} resume Join(task {r}): task ended (trapped at {file}:{join_line})"
            ),
        ];
        Ok::<_, io::Error>((lines, expected))
    })
    .unwrap();
    let lines: Vec<String> = lines.iter().map(|l| trace::steady(l)).collect();
    assert_eq!(lines, expected);
}

/// A countdown and a column are masked; the rest of a line is kept.
#[test]
fn steady_masks_only_what_varies() {
    assert_eq!(
        trace::steady("task 1 trap Sleep(in 59.99s) at tests/x.rs:12:30"),
        "task 1 trap Sleep(in …) at tests/x.rs:12"
    );
    assert_eq!(
        trace::steady("task 2 resume ReadWait(fd 7): readable (trapped at src/a.rs:3:9)"),
        "task 2 resume ReadWait(fd 7): readable (trapped at src/a.rs:3)"
    );
}

/// A timeout resumes both parks in its scope (the sleep inside and the
/// wrapper's `FutureWait`), and names itself; a second reader of an fd is
/// refused with the reason.
#[test]
fn trace_of_a_timeout_and_a_refusal() {
    let file = file!();
    let (lines, expected) = util::run_clean(async {
        let (near, far) = util::tcp_pair().await?;
        let fd = far.as_raw_fd();
        let far = std::rc::Rc::new(far);
        trace::start();
        let main = trapline::current()?.serial();

        let limit = Duration::from_millis(10);
        let (expired, line) = (timeout_after(limit, sleep(Duration::from_secs(3600))).await, line!());
        let Err(TrapError::TimedOut(id)) = expired else {
            panic!("{expired:?}")
        };

        let first = far.clone();
        let read_a = async move { first.read(&mut [0; 8]).await };
        let line_a = line!() - 1;
        let (a, spawn_a) = (trapline::spawn(read_a)?, line!());
        let second = far.clone();
        let read_b = async move { second.read(&mut [0; 8]).await };
        let line_b = line!() - 1;
        let (b, spawn_b) = (trapline::spawn(read_b)?, line!());
        let (sa, sb) = (a.id().serial(), b.id().serial());
        let join_b = line!() + 1;
        let busy = b.join().await?.unwrap_err();
        assert_eq!(busy.kind(), io::ErrorKind::ResourceBusy);
        drop(near); // end of stream: the first reader reads 0
        let join_a = line!() + 1;
        assert_eq!(a.join().await??, 0);
        let lines = trace::stop();

        let expected = [
            format!("task {main} trap Sleep(in …) at {file}:{line}"),
            format!("task {main} trap FutureWait at {file}:{line}"),
            format!("task {main} resume Sleep: {id} expired (trapped at {file}:{line})"),
            format!("task {main} resume FutureWait: {id} expired (trapped at {file}:{line})"),
            format!("task {main} spawn task {sa} at {file}:{spawn_a}"),
            format!("task {main} spawn task {sb} at {file}:{spawn_b}"),
            format!("task {main} trap Join(task {sb}) at {file}:{join_b}"),
            format!("task {sa} trap ReadWait(fd {fd}) at {file}:{line_a}"),
            format!("task {sb} trap ReadWait(fd {fd}) at {file}:{line_b}"),
            format!(
                "task {sb} refused ReadWait(fd {fd}): another task is already waiting on this fd in the same direction"
            ),
            format!("task {main} resume Join(task {sb}): task ended (trapped at {file}:{join_b})"),
            format!("task {main} trap Join(task {sa}) at {file}:{join_a}"),
            format!("task {sa} resume ReadWait(fd {fd}): readable (trapped at {file}:{line_a})"),
            format!("task {main} resume Join(task {sa}): task ended (trapped at {file}:{join_a})"),
        ];
        Ok::<_, io::Error>((lines, expected))
    })
    .unwrap();
    let lines: Vec<String> = lines.iter().map(|l| trace::steady(l)).collect();
    assert_eq!(lines, expected);
}
