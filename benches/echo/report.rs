//! The bench's output: a markdown table, a JSON file, an SVG plot.
//!
//! Rounds are merged: messages and measured time add up, histograms add up,
//! so a figure is over every round, not the best one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::load::{histogram, Outcome};
use crate::servers::Server;

/// One cell of the matrix. `load` is 0 for the closed loop, else the open
/// loop's rate in percent of tokio current_thread's throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub size: usize,
    pub connections: usize,
    pub load: u32,
    pub server: Server,
}

impl PartialOrd for Server {
    fn partial_cmp(&self, other: &Server) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Server {
    fn cmp(&self, other: &Server) -> std::cmp::Ordering {
        let at = |s: &Server| Server::ALL.iter().position(|x| x == s);
        at(self).cmp(&at(other))
    }
}

#[derive(Debug)]
struct Cell {
    offered: f64,
    messages: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
    rounds: u32,
}

/// Every run's outcome, merged by cell.
#[derive(Debug, Default)]
pub struct Results {
    cells: BTreeMap<Key, Cell>,
}

/// Percentiles shown, as quantiles and as labels.
const PERCENTILES: [(f64, &str); 4] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];

/// The line every echo table opens with: quick or full, and the machine.
fn heading(machine: &str, full: bool) -> String {
    let mode = if full { "full" } else { "quick" };
    format!("Echo bench ({mode}), {machine}.\n\n")
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

impl Cell {
    fn throughput(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    fn at(&self, q: f64) -> u64 {
        self.latency.value_at_quantile(q)
    }
}

impl Results {
    /// Adds one run's outcome to its cell.
    pub fn add(&mut self, key: Key, offered: f64, outcome: Outcome) {
        let cell = self.cells.entry(key).or_insert_with(|| Cell {
            offered: 0.0,
            messages: 0,
            elapsed: Duration::ZERO,
            latency: histogram(),
            rounds: 0,
        });
        cell.offered += offered;
        cell.messages += outcome.messages;
        cell.elapsed += outcome.elapsed;
        cell.rounds += 1;
        cell.latency
            .add(&outcome.latency)
            .expect("histograms with the same bounds");
    }

    fn get(&self, server: Server, key: &Key) -> Option<&Cell> {
        self.cells.get(&Key { server, ..*key })
    }

    /// The figures and the trapline/tokio ratios, as markdown.
    pub fn markdown(&self, machine: &str, full: bool) -> String {
        let mut s = heading(machine, full);
        let _ = writeln!(
            s,
            "| size | conns | load | server | msg/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |"
        );
        let _ = writeln!(
            s,
            "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for (key, cell) in &self.cells {
            let load = if key.load == 0 {
                "closed".to_string()
            } else {
                format!("open {}%", key.load)
            };
            let _ = write!(
                s,
                "| {} | {} | {load} | {} | {:.0} |",
                key.size,
                key.connections,
                key.server.name(),
                cell.throughput()
            );
            for (q, _) in PERCENTILES {
                let _ = write!(s, " {:.1} |", us(cell.at(q)));
            }
            let _ = writeln!(s, " {:.1} |", us(cell.latency.max()));
        }
        s.push_str(&self.ratios());
        s
    }

    /// The heading and the ratio tables only: what the README shows.
    pub fn summary(&self, machine: &str, full: bool) -> String {
        let mut s = heading(machine, full);
        let _ = writeln!(
            s,
            "Ratios from the same run; every server's own figures are in `echo.md`."
        );
        s.push_str(&self.ratios());
        s
    }

    /// trapline against each reference, cell by cell.
    fn ratios(&self) -> String {
        let mut s = String::new();
        for (ours_is, against, title) in [
            (
                Server::Trapline,
                Server::TokioCt,
                "trapline / tokio current_thread",
            ),
            (Server::Trapline, Server::RawMio, "trapline / raw mio"),
            (
                Server::Trapline2,
                Server::TokioMt,
                "trapline, 2 kernels / tokio multi_thread, 2 workers (both on one core)",
            ),
        ] {
            let _ = writeln!(
                s,
                "\n{title} (throughput: above 1 is better; latency: below 1 is better)\n"
            );
            let _ = writeln!(
                s,
                "| size | conns | load | msg/s | p50 | p90 | p99 | p99.9 |"
            );
            let _ = writeln!(
                s,
                "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
            );
            for (key, ours) in self.cells.iter().filter(|(k, _)| k.server == ours_is) {
                let Some(theirs) = self.get(against, key) else {
                    continue;
                };
                let load = if key.load == 0 {
                    "closed".to_string()
                } else {
                    format!("open {}%", key.load)
                };
                let _ = write!(
                    s,
                    "| {} | {} | {load} | {:.3} |",
                    key.size,
                    key.connections,
                    ours.throughput() / theirs.throughput().max(1e-9)
                );
                for (q, _) in PERCENTILES {
                    let _ = write!(
                        s,
                        " {:.2} |",
                        ours.at(q) as f64 / theirs.at(q).max(1) as f64
                    );
                }
                let _ = writeln!(s);
            }
        }
        s
    }

    /// Every cell's raw figures, as JSON.
    pub fn json(&self, machine: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{{\n  \"machine\": {:?},\n  \"runs\": [", machine);
        let last = self.cells.len().saturating_sub(1);
        for (i, (key, cell)) in self.cells.iter().enumerate() {
            let _ = write!(
                s,
                "    {{\"server\": {:?}, \"size\": {}, \"connections\": {}, \"mode\": {:?}, \
                 \"load_percent\": {}, \"offered_per_s\": {:.1}, \"rounds\": {}, \
                 \"messages\": {}, \"seconds\": {:.6}, \"throughput_per_s\": {:.1}, \
                 \"latency_ns\": {{\"min\": {}, \"mean\": {:.1}",
                key.server.name(),
                key.size,
                key.connections,
                if key.load == 0 { "closed" } else { "open" },
                key.load,
                cell.offered / f64::from(cell.rounds.max(1)),
                cell.rounds,
                cell.messages,
                cell.elapsed.as_secs_f64(),
                cell.throughput(),
                cell.latency.min(),
                cell.latency.mean(),
            );
            for (q, label) in PERCENTILES {
                let _ = write!(s, ", {:?}: {}", label, cell.at(q));
            }
            let _ = writeln!(
                s,
                ", \"max\": {}}}}}{}",
                cell.latency.max(),
                if i == last { "" } else { "," }
            );
        }
        let _ = writeln!(s, "  ]\n}}");
        s
    }

    /// p99 latency against offered load, one panel per message size and
    /// connection count, one line per server; log-scale latency.
    pub fn svg(&self, machine: &str) -> String {
        let mut panels: Vec<(usize, usize)> =
            self.cells.keys().map(|k| (k.size, k.connections)).collect();
        panels.dedup();
        let mut sizes: Vec<usize> = panels.iter().map(|p| p.0).collect();
        sizes.dedup();
        let mut conns: Vec<usize> = panels.iter().map(|p| p.1).collect();
        conns.sort_unstable();
        conns.dedup();
        // One row per message size, one column per connection count.
        let (pw, ph, margin) = (300.0, 200.0, 50.0);
        let width = margin + conns.len().max(1) as f64 * (pw + margin);
        let height = margin + sizes.len().max(1) as f64 * (ph + margin) + 30.0;
        let colours = [
            (Server::Trapline, "#d62728"),
            (Server::TokioCt, "#1f77b4"),
            (Server::TokioMt, "#2ca02c"),
            (Server::RawMio, "#7f7f7f"),
            (Server::Trapline2, "#ff7f0e"),
        ];
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{margin}" y="18" font-size="13">Echo p99 latency (µs, log scale) against offered load (% of tokio current_thread's throughput) — {}</text>"#,
            escape(machine)
        );
        for &(size, connections) in &panels {
            let col = conns.iter().position(|&c| c == connections).unwrap_or(0);
            let row = sizes.iter().position(|&z| z == size).unwrap_or(0);
            let x0 = margin + col as f64 * (pw + margin);
            let y0 = margin + row as f64 * (ph + margin);
            let points = |server: Server| -> Vec<(u32, u64)> {
                self.cells
                    .iter()
                    .filter(|(k, _)| {
                        k.server == server
                            && k.size == size
                            && k.connections == connections
                            && k.load > 0
                    })
                    .map(|(k, c)| (k.load, c.at(0.99).max(1)))
                    .collect()
            };
            let all: Vec<u64> = colours
                .iter()
                .flat_map(|(sv, _)| points(*sv))
                .map(|p| p.1)
                .collect();
            let lo = (*all.iter().min().unwrap_or(&1000) as f64).log10().floor();
            let hi = ((*all.iter().max().unwrap_or(&1000) as f64).log10().ceil()).max(lo + 1.0);
            let y = |ns: u64| y0 + ph - ((ns as f64).log10() - lo) / (hi - lo) * ph;
            let x = |load: u32| x0 + f64::from(load) / 100.0 * pw;
            let _ = writeln!(
                s,
                r#"<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}">{size} B, {connections} connection(s)</text>"#,
                x0 + 5.0,
                y0 - 6.0
            );
            for decade in lo as i32..=hi as i32 {
                let ns = 10f64.powi(decade) as u64;
                let _ = writeln!(
                    s,
                    r##"<line x1="{x0}" x2="{x1}" y1="{yl}" y2="{yl}" stroke="#ddd"/><text x="{xt}" y="{yt}" text-anchor="end">{label}</text>"##,
                    x1 = x0 + pw,
                    yl = y(ns),
                    xt = x0 - 4.0,
                    yt = y(ns) + 4.0,
                    label = ns as f64 / 1e3
                );
            }
            for load in [0, 25, 50, 75, 100] {
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="middle">{load}%</text>"#,
                    x(load),
                    y0 + ph + 14.0
                );
            }
            for (server, colour) in colours {
                let pts = points(server);
                if pts.is_empty() {
                    continue;
                }
                let path: Vec<String> = pts
                    .iter()
                    .map(|&(l, ns)| format!("{:.1},{:.1}", x(l), y(ns)))
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                    path.join(" ")
                );
                for &(l, ns) in &pts {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                        x(l),
                        y(ns)
                    );
                }
            }
        }
        for (i, (server, colour)) in colours.iter().enumerate() {
            let lx = margin + i as f64 * 130.0;
            let ly = height - 14.0;
            let _ = writeln!(
                s,
                r#"<rect x="{lx}" y="{}" width="14" height="4" fill="{colour}"/><text x="{}" y="{ly}">{}</text>"#,
                ly - 5.0,
                lx + 18.0,
                server.name()
            );
        }
        let _ = writeln!(s, "</svg>");
        s
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
