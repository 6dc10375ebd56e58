//! Sleeping: wake order by deadline, ties in the order they were set, and the
//! sleeps that must not trap at all.

mod util;

use std::time::Duration;

use trapline::{clock, sleep, sleep_until, spawn, yield_now, TrapError};
use util::{entries, log, push, run_virtual, run_virtual_clean};

/// Tasks spawned in the order 30, 10, 20 ms, sleeping that long, wake in
/// deadline order: 10, 20, 30; each sleep resolves to `Ok(())`.
#[test]
fn sleeps_wake_in_deadline_order() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let mut handles = Vec::new();
            for ms in [30_u64, 10, 20] {
                let log = log.clone();
                handles.push(
                    spawn(async move {
                        let slept = sleep(Duration::from_millis(ms)).await;
                        push(&log, format!("{ms} ms"));
                        slept
                    })
                    .unwrap(),
                );
            }
            for h in handles {
                assert_eq!(h.join().await, Ok(Ok(())));
            }
        }
    });
    assert_eq!(entries(&log), ["10 ms", "20 ms", "30 ms"]);
}

/// Sleeps until one shared `Instant` wake in the order they were set, not in
/// spawn order: task "c" sets its sleep first (no yield), "a" after one yield,
/// "b" after two.
#[test]
fn equal_deadlines_wake_in_the_order_they_were_set() {
    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let at = clock().unwrap() + Duration::from_millis(15);
            let mut handles = Vec::new();
            for (name, yields) in [("a", 1), ("b", 2), ("c", 0)] {
                let log = log.clone();
                handles.push(
                    spawn(async move {
                        for _ in 0..yields {
                            yield_now().await.unwrap();
                        }
                        push(&log, format!("{name}: set"));
                        sleep_until(at).await.unwrap();
                        push(&log, format!("{name}: woke"));
                    })
                    .unwrap(),
                );
            }
            for h in handles {
                h.join().await.unwrap();
            }
        }
    });
    assert_eq!(
        entries(&log),
        ["c: set", "a: set", "b: set", "c: woke", "a: woke", "b: woke"]
    );
}

/// `sleep(Duration::ZERO)` completes on its first poll without trapping: the
/// main task is polled exactly once, and a task spawned before the sleep runs
/// only after main's next real trap.
#[test]
fn sleep_zero_completes_without_trapping() {
    let (out, stats) = run_virtual(async { sleep(Duration::ZERO).await });
    assert_eq!(out, Ok(()));
    assert_eq!(stats.polls, 1, "main was polled once: it never trapped");
    util::assert_clean(&stats);

    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let other = spawn({
                let log = log.clone();
                async move { push(&log, "other: ran") }
            })
            .unwrap();
            for _ in 0..3 {
                assert_eq!(sleep(Duration::ZERO).await, Ok(()));
            }
            push(&log, "main: slept zero three times");
            other.join().await.unwrap();
            push(&log, "main: joined");
        }
    });
    assert_eq!(
        entries(&log),
        ["main: slept zero three times", "other: ran", "main: joined"]
    );
}

/// `sleep_until` a deadline already passed — the clock reading just taken, or
/// one from before a real sleep — completes at once, without trapping.
#[test]
fn sleep_until_in_the_past_completes_at_once() {
    let (out, stats) = run_virtual(async {
        let now = clock()?;
        sleep_until(now).await?;
        Ok::<_, TrapError>(())
    });
    assert_eq!(out, Ok(()));
    assert_eq!(stats.polls, 1);
    util::assert_clean(&stats);

    let log = log();
    run_virtual_clean({
        let log = log.clone();
        async move {
            let past = clock().unwrap();
            sleep(Duration::from_millis(2)).await.unwrap();
            let other = spawn({
                let log = log.clone();
                async move { push(&log, "other: ran") }
            })
            .unwrap();
            assert_eq!(sleep_until(past).await, Ok(()));
            assert_eq!(sleep_until(past - Duration::from_millis(1)).await, Ok(()));
            push(&log, "main: past deadlines passed");
            other.join().await.unwrap();
        }
    });
    assert_eq!(entries(&log), ["main: past deadlines passed", "other: ran"]);
}

/// A sleep resumes only once the kernel's clock has reached its deadline
/// (ordering, not duration: the clock after the wake is not before the deadline).
#[test]
fn sleep_until_resumes_at_or_after_its_deadline() {
    run_virtual_clean(async {
        let at = clock().unwrap() + Duration::from_millis(3);
        sleep_until(at).await.unwrap();
        assert!(clock().unwrap() >= at);
    });
}

/// `sleep(Duration::MAX)` does not overflow the clock: it parks like any long
/// sleep and ends with `Cancelled` when its task is cancelled.
#[test]
fn sleep_for_duration_max_parks_and_is_cancellable() {
    run_virtual_clean(async {
        let task = spawn(async { sleep(Duration::MAX).await }).unwrap();
        yield_now().await.unwrap();
        assert!(!task.is_finished());
        assert_eq!(task.cancel().await, Ok(Err(TrapError::Cancelled)));
    });
}
