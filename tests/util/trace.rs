//! A `log` logger that captures the `trapline::trap` lines of the calling
//! thread, for asserting the trace exactly.

use std::cell::RefCell;
use std::sync::Once;

use log::{Level, Log, Metadata, Record};

struct Capture;

static CAPTURE: Capture = Capture;

thread_local! {
    static LINES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() == Level::Trace && metadata.target() == "trapline::trap"
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            LINES.with(|lines| {
                if let Some(lines) = lines.borrow_mut().as_mut() {
                    lines.push(record.args().to_string());
                }
            });
        }
    }

    fn flush(&self) {}
}

/// Starts capturing this thread's trap lines.
pub fn start() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
    LINES.with(|lines| *lines.borrow_mut() = Some(Vec::new()));
}

/// Stops capturing; returns the lines captured since [`start`].
pub fn stop() -> Vec<String> {
    LINES.with(|lines| lines.borrow_mut().take().unwrap_or_default())
}

/// A trace line with what changes from run to run masked: a countdown
/// (`Sleep(in 59.9s)` → `Sleep(in …)`) and the column of a source
/// location (`file.rs:12:30` → `file.rs:12`).
pub fn steady(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("(in ") {
        out.push_str(&rest[..at]);
        out.push_str("(in …)");
        rest = rest[at..].split_once(')').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    // `.rs:LINE:COL` → `.rs:LINE`
    let mut masked = String::new();
    let mut rest = out.as_str();
    while let Some(at) = rest.find(".rs:") {
        let (head, tail) = rest.split_at(at + 4);
        masked.push_str(head);
        let line_len = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        masked.push_str(&tail[..line_len]);
        let tail = &tail[line_len..];
        rest = match tail.strip_prefix(':') {
            Some(col) => col.trim_start_matches(|c: char| c.is_ascii_digit()),
            None => tail,
        };
    }
    masked.push_str(rest);
    masked
}
