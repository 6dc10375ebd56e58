//! `RUST_LOG=trapline=trace`: one line per trap and per resume, saying which
//! task, which trap, which fd or deadline, resumed with what, and where.

mod util;

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use trapline::task::Builder;
use trapline::{sleep, yield_now};
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
