//! The trace printed in `docs/how-it-works.md` is the real one: this runs the
//! guide's example (`examples/round_trip.rs`, included as it is) and fails
//! when its trap lines and the guide's trace block part. Only the fd numbers
//! may differ (this test process has opened other fds). `docs/regen.sh`
//! brings the guide up to date.
//!
//! Task ids are unique in a process and the first kernel's first task is
//! `task 1`, as in the example's own process: so this file holds one kernel
//! run only (the second test reads the guide and runs nothing).

#[allow(dead_code)] // its `main` is the example's, not this test's
#[path = "../examples/round_trip.rs"]
mod round_trip;
mod util;

use util::trace;

const GUIDE: &str = include_str!("../docs/how-it-works.md");

/// The lines of the guide's trace block, log prefix removed.
fn guide_trace() -> Vec<String> {
    let block = GUIDE
        .split_once("<!-- trace: begin -->")
        .and_then(|(_, rest)| rest.split_once("<!-- trace: end -->"))
        .map(|(block, _)| block)
        .expect("the guide has a trace block");
    block
        .lines()
        .filter_map(|l| l.strip_prefix("TRACE trapline::trap] "))
        .map(str::to_string)
        .collect()
}

/// The guide without its trace block: the prose.
fn prose() -> String {
    let (before, rest) = GUIDE
        .split_once("<!-- trace: begin -->")
        .expect("the guide has a trace block");
    let (_, after) = rest
        .split_once("<!-- trace: end -->")
        .expect("the block ends");
    format!("{before}{after}")
}

/// A line with its fd numbers replaced by `N`, and the path this test sees
/// the included file under made the example's own.
fn comparable(line: &str) -> String {
    let line = line.replace("tests/../examples/", "examples/");
    let mut out = String::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("fd ") {
        out.push_str(&rest[..at + 3]);
        rest = rest[at + 3..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('N');
    }
    out.push_str(rest);
    out
}

/// The guide's trace block is exactly what the example prints, line for
/// line (fd numbers aside), and the round trip echoes `ping`.
#[test]
fn guide_trace_is_the_real_trace() {
    trace::start();
    let back = round_trip::round_trip().expect("the round trip");
    let real: Vec<String> = trace::stop().iter().map(|l| comparable(l)).collect();
    assert_eq!(back, b"ping");
    // The prose follows the read to its result: the bytes it returns.
    let ready = format!("returns {n}. It calls `Leaf::done`", n = back.len());
    assert!(
        GUIDE.contains(&ready),
        "the guide's read returns {}",
        back.len()
    );
    assert!(GUIDE.contains(&format!("`Poll::Ready(Ok({}))`", back.len())));
    let guide: Vec<String> = guide_trace().iter().map(|l| comparable(l)).collect();
    assert!(guide.len() >= 10, "the guide's block is the whole trace");
    assert_eq!(
        real, guide,
        "docs/how-it-works.md's trace no longer matches examples/round_trip.rs: run docs/regen.sh"
    );
}

/// Every line of the example the guide's prose cites is a line the trace
/// names, so the prose cannot point at a line that moved.
#[test]
fn guide_cites_only_traced_lines() {
    let trace = guide_trace().join("\n");
    let prose = prose();
    let mut cited = 0;
    for (at, _) in prose.match_indices("examples/round_trip.rs:") {
        let tail = &prose[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "/_.:".contains(c)))
            .unwrap_or(tail.len());
        let place = tail[..end].trim_end_matches(['.', ':']);
        assert!(
            trace.contains(place),
            "the guide cites {place}, which the trace does not name"
        );
        cited += 1;
    }
    assert!(cited >= 2, "the prose follows the read by its line");
}

/// The fd the prose speaks of is the one the trace block shows for the read
/// it follows: `docs/regen.sh` may give the stream another number, and then
/// this fails until the prose says the same.
#[test]
fn guide_prose_names_the_traced_fd() {
    let (_, after) = GUIDE
        .split_once("The read is `")
        .expect("the prose names the read it follows");
    let place = &after[..after.find('`').unwrap()];
    let trap = guide_trace()
        .into_iter()
        .find(|l| l.contains(" trap ReadWait(fd ") && l.ends_with(&format!(" at {place}")))
        .unwrap_or_else(|| panic!("the trace has no ReadWait trap at {place}"));
    let fd = &trap[trap.find("(fd ").unwrap() + 1..trap.find(')').unwrap()];
    let prose = prose();
    let mut named = 0;
    for (at, _) in prose.match_indices("fd ") {
        let digits: String = prose[at + 3..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() {
            assert_eq!(
                format!("fd {digits}"),
                fd,
                "the prose names fd {digits}; the read is on {fd}"
            );
            named += 1;
        }
    }
    assert!(named >= 5, "the prose follows the fd through the kernel");
}
