//! The README's performance tables are the latest results the benches wrote:
//! each block between `<!-- results: FILE -->` and `<!-- end results -->`
//! must hold `benches/results/FILE` as it is. A bench run that is not copied
//! into the README (`scripts/readme_results.sh`), or a table edited by hand,
//! fails here.

use std::fs;
use std::path::Path;

const README: &str = include_str!("../README.md");
const OPEN: &str = "<!-- results: ";
const CLOSE: &str = "<!-- end results -->";

/// Every results block of the README: the file it names and what it holds.
fn blocks(readme: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = readme;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let (name, after) = after
            .split_once(" -->")
            .expect("a results marker ends with -->");
        let (body, after) = after
            .split_once(CLOSE)
            .unwrap_or_else(|| panic!("the results block of {name} is not closed"));
        found.push((name.to_string(), body.trim().to_string()));
        rest = after;
    }
    found
}

#[test]
fn every_results_block_shows_its_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    let blocks = blocks(README);
    let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "echo_summary.md",
            "syscalls.md",
            "kernel.md",
            "resources.md",
            "timers.md"
        ],
        "the README shows each results file once, in this order"
    );
    for (name, body) in blocks {
        let file = fs::read_to_string(dir.join(&name))
            .unwrap_or_else(|e| panic!("benches/results/{name}: {e}"));
        assert_eq!(
            body,
            file.trim(),
            "README's block for {name} differs from benches/results/{name}: \
             run scripts/readme_results.sh"
        );
    }
}

#[test]
fn a_block_is_read_between_its_markers() {
    let text = "a\n<!-- results: x.md -->\n\n| 1 |\n\n<!-- end results -->\nb\n\
                <!-- results: y.md -->\ny\n<!-- end results -->";
    assert_eq!(
        blocks(text),
        [
            ("x.md".to_string(), "| 1 |".to_string()),
            ("y.md".to_string(), "y".to_string())
        ]
    );
    assert!(blocks("no blocks").is_empty());
}
