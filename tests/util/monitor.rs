//! Talking to the monitor from a task: read to the prompt, ask, cut `ps`
//! into cells.

use std::io;

use trapline::net::TcpStream;

/// What ends every answer of the monitor.
pub const PROMPT: &str = "trapline > ";

/// Reads until the prompt; returns what came before it.
pub async fn until_prompt(conn: &TcpStream) -> io::Result<String> {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !got.ends_with(PROMPT.as_bytes()) {
        match conn.read(&mut buf).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    got.truncate(got.len() - PROMPT.len());
    Ok(String::from_utf8(got).expect("the monitor speaks UTF-8"))
}

/// Sends one command and returns the answer, prompt removed.
pub async fn ask(conn: &TcpStream, command: &str) -> io::Result<String> {
    conn.write_all(format!("{command}\n").as_bytes()).await?;
    until_prompt(conn).await
}

/// `ps`'s rows, cut into cells at the column gaps (two spaces or more).
pub fn cells(ps: &str) -> Vec<Vec<String>> {
    ps.lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// Whether `cell` reads as a duration the way `ps` prints one.
pub fn is_duration(cell: &str) -> bool {
    ["us", "ms", "s"].iter().any(|unit| {
        cell.strip_suffix(unit)
            .is_some_and(|n| n.parse::<f64>().is_ok())
    })
}
