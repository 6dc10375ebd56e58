//! The monitor's `ps` rows, for tasks whose names or states could make a row
//! lie: names with control characters, tasks ready again after a park.

mod util;

use std::io;
use std::time::Duration;

use trapline::monitor::Monitor;
use trapline::net::TcpStream;
use trapline::task::Builder;
use trapline::{sleep, yield_now, Kernel, TrapError};
use util::monitor::{ask, cells, until_prompt};

/// A kernel for `monitor`, with a short grace.
fn kernel(monitor: &Monitor) -> Kernel {
    let builder = Kernel::builder().shutdown_grace(Duration::from_millis(50));
    monitor.build(builder).expect("a kernel")
}

/// Regression: a name holding a newline (or a tab, or a forged prompt) is
/// printed escaped, so every task stays one row and the answer ends at the
/// real prompt.
#[test]
fn ps_escapes_names_with_newlines() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            let name = "evil\ntrapline > \tname";
            let evil = Builder::new()
                .name(name)
                .spawn(sleep(Duration::from_secs(3600)))?;
            yield_now().await?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;
            let ps = ask(&conn, "ps").await?;
            let rows = cells(&ps);
            assert_eq!(rows.len(), 5, "a header and four tasks:\n{ps}");
            let row = rows
                .iter()
                .find(|r| r[0] == evil.id().serial().to_string())
                .unwrap();
            assert_eq!(row[1], r"evil\ntrapline > \tname");
            assert_eq!(row[2], "parked");
            // `where` quotes it the same way.
            let answer = ask(&conn, &format!("where {}", row[0])).await?;
            let first = answer.lines().next().unwrap();
            assert_eq!(
                first,
                format!(r#"task {} "evil\ntrapline > \tname""#, row[0])
            );
            assert_eq!(evil.cancel().await?, Err(TrapError::Cancelled));
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}

/// Regression: a task whose park fired and that waits in the ready queue
/// is not parked any more; `ps` shows no trap for it (its last one is for
/// `where`), only for tasks that are parked now.
#[test]
fn ps_shows_no_trap_for_a_ready_task() {
    let monitor = Monitor::new("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut kernel = kernel(&monitor);
    kernel
        .run(async {
            let addr = monitor.start()?;
            // Steps aside forever: parked on nothing, ready at every pass.
            let spinner = Builder::new()
                .name("spinner")
                .spawn(async { while yield_now().await.is_ok() {} })?;
            yield_now().await?;
            let conn = TcpStream::connect(addr).await?;
            until_prompt(&conn).await?;
            let ps = ask(&conn, "ps").await?;
            let row = cells(&ps).into_iter().find(|r| r[1] == "spinner").unwrap();
            assert_eq!(row[2], "ready", "{ps}");
            assert_eq!((&row[4][..], &row[5][..]), ("-", "-"), "{ps}");
            let answer = ask(&conn, &format!("where {}", row[0])).await?;
            assert!(answer.contains("  last trapped on Yield at "), "{answer}");
            spinner.cancel().await?;
            Ok::<(), io::Error>(())
        })
        .unwrap()
        .unwrap();
    util::assert_clean(&kernel.stats());
}
