//! The virtual clock: time stands still while any task can run and jumps to
//! the next deadline when every task waits. Hours of sleeps and nested
//! timeouts run in milliseconds, and every reading of `clock()` is exact.

mod util;

use std::time::{Duration, Instant};

use trapline::net::TcpListener;
use trapline::{clock, ignore_after, sleep, spawn, timeout_after, yield_now, Kernel, TrapError};
use util::{
    assert_clean, entries, log, on_a_thread_within, push, run_virtual, run_virtual_clean, since,
};

const HOUR: Duration = Duration::from_secs(3600);

fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// Three nested timeouts (3 h, 2 h, 1 h) around day-long sleeps, beside a
/// task ticking every 25 minutes: the inner limit ends its block at exactly
/// 60 min, a 10-minute cleanup follows, the middle limit ends its block at
/// 120 min and the outer one at 180 min, with the ticks in between. Each log
/// line carries the exact virtual minute it happened at; the whole run takes
/// as long as its polls.
#[test]
fn hours_of_nested_timeouts_run_in_exact_order() {
    let log = log();
    let (out, stats) = run_virtual({
        let log = log.clone();
        async move {
            let t0 = clock().unwrap();
            let at = |what: &str| format!("{:>3} min: {what}", since(t0).as_secs() / 60);
            let ticker = spawn({
                let log = log.clone();
                async move {
                    for _ in 0..6 {
                        sleep(mins(25)).await.unwrap();
                        push(&log, format!("{:>3} min: tick", since(t0).as_secs() / 60));
                    }
                }
            })
            .unwrap();
            let outer = timeout_after(3 * HOUR, async {
                let middle = timeout_after(2 * HOUR, async {
                    let inner = timeout_after(HOUR, sleep(24 * HOUR)).await;
                    push(&log, at(&format!("inner ended: {}", inner.is_err())));
                    // The inner limit is over; the middle one is still in force.
                    let cleanup = trapline::shield(sleep(mins(10))).await;
                    push(&log, at(&format!("cleanup: {cleanup:?}")));
                    sleep(24 * HOUR).await
                })
                .await;
                push(
                    &log,
                    at(&format!(
                        "middle timed out: {}",
                        matches!(middle, Err(TrapError::TimedOut(_)))
                    )),
                );
                sleep(24 * HOUR).await
            })
            .await;
            push(
                &log,
                at(&format!(
                    "outer timed out: {}",
                    matches!(outer, Err(TrapError::TimedOut(_)))
                )),
            );
            ticker.join().await.unwrap();
            push(&log, at("ticker joined"));
            since(t0)
        }
    });
    assert_eq!(out, Duration::from_secs(180 * 60));
    assert_eq!(
        entries(&log),
        [
            " 25 min: tick",
            " 50 min: tick",
            " 60 min: inner ended: true",
            " 70 min: cleanup: Ok(())",
            " 75 min: tick",
            "100 min: tick",
            "120 min: middle timed out: true",
            "125 min: tick",
            "150 min: tick",
            "180 min: outer timed out: true",
            "180 min: ticker joined",
        ]
        .map(String::from)
    );
    assert_clean(&stats);
}

/// `clock()` stands still while tasks run (however many passes they take)
/// and a sleep resumes at exactly its deadline, never later: the readings
/// are exact durations.
#[test]
fn clock_readings_are_exact() {
    let readings = run_virtual_clean(async {
        let t0 = clock().unwrap();
        let mut seen = Vec::new();
        for _ in 0..100 {
            yield_now().await.unwrap();
        }
        seen.push(since(t0));
        sleep(Duration::from_nanos(1)).await.unwrap();
        seen.push(since(t0));
        sleep(Duration::from_millis(1500)).await.unwrap();
        seen.push(since(t0));
        trapline::sleep_until(t0 + 5 * HOUR).await.unwrap();
        seen.push(since(t0));
        let none = ignore_after(Duration::from_micros(7), sleep(HOUR)).await;
        seen.push(since(t0));
        assert_eq!(none, Ok(None));
        seen
    });
    let nanos = |n: u64| Duration::from_nanos(n);
    assert_eq!(
        readings,
        [
            Duration::ZERO,
            nanos(1),
            nanos(1) + Duration::from_millis(1500),
            5 * HOUR,
            5 * HOUR + Duration::from_micros(7),
        ]
    );
}

/// Time does not move while any task can run: a sleeper due in one
/// (virtual) nanosecond wakes only after a task that yields 1,000 times is
/// done, however long that takes in real time.
#[test]
fn time_stands_still_while_a_task_can_run() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let t0 = clock().unwrap();
            let sleeper = spawn({
                let log = log.clone();
                async move {
                    sleep(Duration::from_nanos(1)).await.unwrap();
                    push(&log, format!("sleeper woke at {:?}", since(t0)));
                }
            })
            .unwrap();
            let busy = spawn({
                let log = log.clone();
                async move {
                    for _ in 0..1000 {
                        yield_now().await.unwrap();
                    }
                    push(&log, format!("busy done at {:?}", since(t0)));
                }
            })
            .unwrap();
            busy.join().await.unwrap();
            sleeper.join().await.unwrap();
        }
    });
    assert_eq!(entries(&log), ["busy done at 0ns", "sleeper woke at 1ns"]);
}

/// Deadlines tie-break in the order they were set, on the virtual clock as
/// on the real one, and sleeps set at different times wake in deadline order.
#[test]
fn deadlines_fire_in_order_with_ties_in_the_order_set() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let t0 = clock().unwrap();
            let mut tasks = Vec::new();
            for (name, after) in [("c", 30), ("a", 10), ("b", 10), ("d", 20)] {
                let log = log.clone();
                tasks.push(
                    spawn(async move {
                        sleep(mins(after)).await.unwrap();
                        push(&log, format!("{name} at {}", since(t0).as_secs() / 60));
                    })
                    .unwrap(),
                );
            }
            for t in tasks {
                t.join().await.unwrap();
            }
        }
    });
    assert_eq!(entries(&log), ["a at 10", "b at 10", "d at 20", "c at 30"]);
}

/// The shutdown grace is counted on the virtual clock: a task that cleans
/// up for 30 virtual minutes after the cancel finishes inside a one-hour
/// grace, and is dropped inside a ten-minute one.
#[test]
fn shutdown_grace_is_virtual_time() {
    for (grace, expected) in [
        (HOUR, vec!["cancelled", "cleaned up at 30 min"]),
        (mins(10), vec!["cancelled"]),
    ] {
        let log = log();
        let ((), stats) = util::run_virtual_with_grace(grace, {
            let log = log.clone();
            async move {
                spawn(async move {
                    let r = sleep(24 * HOUR).await;
                    assert_eq!(r, Err(TrapError::Cancelled));
                    push(&log, "cancelled");
                    let t0 = clock().unwrap();
                    trapline::shield(sleep(mins(30))).await.unwrap();
                    push(
                        &log,
                        format!("cleaned up at {} min", since(t0).as_secs() / 60),
                    );
                })
                .unwrap();
                yield_now().await.unwrap();
            }
        });
        assert_eq!(entries(&log), expected, "grace {grace:?}");
        assert_clean(&stats);
    }
}

/// A virtual kernel whose only task waits on I/O with no deadline anywhere
/// blocks in `epoll_wait` instead of spinning: a connection made by another
/// thread 50 ms (real) later is accepted after a handful of passes.
#[test]
fn virtual_kernel_waiting_only_on_io_does_not_spin() {
    let (accepted, stats) = run_virtual(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let addr = listener.local_addr()?;
        let client = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::net::TcpStream::connect(addr).map(drop)
        });
        let (stream, _) = listener.accept().await?;
        client.join().unwrap()?;
        drop(stream);
        Ok::<_, std::io::Error>(since_start_is_zero())
    });
    assert!(accepted.unwrap(), "no deadline: the clock never moved");
    assert!(stats.passes < 20, "the kernel spun while idle: {stats:?}");
    assert_clean(&stats);
}

/// Reads the clock twice with a real wait between: equal on a virtual clock.
fn since_start_is_zero() -> bool {
    let a = clock().unwrap();
    std::thread::sleep(Duration::from_millis(2));
    clock().unwrap() == a
}

/// Trap requests print their countdown on the kernel's clock: a sleep due in
/// 20 ms of virtual time, five virtual hours after the start, prints as
/// `Sleep(in 20.00ms)`, not as hours away or already past.
#[test]
fn trap_requests_print_against_the_virtual_clock() {
    let shown = run_virtual_clean(async {
        sleep(5 * HOUR).await.unwrap();
        let deadline = clock().unwrap() + Duration::from_millis(20);
        trapline::traps::Trap::Sleep { deadline }.to_string()
    });
    assert_eq!(shown, "Sleep(in 20.00ms)");
}

/// A real-clock kernel is untouched by the option: a virtual kernel's time
/// runs ahead of the system's, a real one's does not.
#[test]
fn the_real_clock_stays_real() {
    let before = Instant::now();
    let virtual_now = run_virtual_clean(async {
        sleep(HOUR).await.unwrap();
        clock().unwrap()
    });
    assert!(virtual_now >= before + HOUR);
    let mut real = Kernel::new().unwrap();
    let real_now = real.run(async { clock().unwrap() }).unwrap();
    assert!(real_now < before + HOUR);
}

/// A task that never lets the kernel idle stops virtual time (documented),
/// but cannot stop shutdown: the grace is bounded in real time as well, and
/// the spinning task is dropped when it runs out.
#[test]
fn a_spinning_task_cannot_hold_a_virtual_shutdown_forever() {
    let (t, stats) = util::run_virtual_with_grace(Duration::from_millis(20), async {
        spawn(async {
            loop {
                let _ = yield_now().await; // swallows the cancellation
            }
        })
        .unwrap();
        yield_now().await.unwrap();
        clock().unwrap()
    });
    let _ = t;
    assert_clean(&stats);
}

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Sleeps and timeouts of centuries on a virtual clock end at their own
/// deadlines, to the nanosecond, after nearer ones: the timer queue moves
/// the epoch its entries count from when a deadline lands centuries away.
/// `sleep(Duration::MAX)` after an earlier timer ends too, with no spin
/// (it once jumped to a clamped deadline and fired there for ever).
#[test]
fn sleeps_of_centuries_end_at_their_deadline() {
    let (out, stats) = on_a_thread_within(Duration::from_secs(60), || {
        run_virtual(async {
            let t0 = clock()?;
            sleep(Duration::from_millis(1)).await?;
            sleep(YEAR * 150).await?;
            let slept = since(t0);
            let limited = timeout_after(YEAR * 200, sleep(YEAR * 210)).await;
            let timed_out = (limited.is_err(), since(t0));
            sleep(Duration::MAX).await?;
            Ok::<_, TrapError>((slept, timed_out, since(t0) > YEAR * 400))
        })
    });
    let ms = Duration::from_millis(1);
    assert_eq!(
        out.unwrap(),
        (ms + YEAR * 150, (true, ms + YEAR * 350), true)
    );
    assert_clean(&stats);
    assert!(
        stats.polls < 20,
        "a jump per century, not a spin: {} polls",
        stats.polls
    );
}

/// A task sleeping for ever does not hold back a nearer sleep or timeout,
/// on the real clock: the first deadline the timer queue counts from was
/// once "for ever", and every nearer one was then clamped to a century.
#[test]
fn sleeping_for_ever_does_not_hold_back_nearer_deadlines() {
    let out = on_a_thread_within(Duration::from_secs(60), || {
        let out = trapline::run(async {
            let forever = spawn(async { sleep(Duration::MAX).await })?;
            yield_now().await?;
            sleep(Duration::from_millis(10)).await?;
            let limited = timeout_after(Duration::from_millis(10), sleep(HOUR)).await;
            let _ = forever.cancel().await; // its sleep ends as cancelled
            Ok::<_, TrapError>(limited.map(drop))
        });
        format!("{out:?}")
    });
    assert!(out.starts_with("Ok(Ok(Err(TimedOut("), "{out}");
}
