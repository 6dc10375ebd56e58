#!/usr/bin/env bash
# Copies the real trace of `examples/round_trip.rs` into the trace block of
# docs/how-it-works.md (between the `trace: begin` and `trace: end` marks).
# Only the example's trap lines are kept: cargo's own messages and anything
# else on stderr stay out. `cargo test --test guide` fails when the block and
# the example part, or when the prose names another fd than the trace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --example round_trip
trace=$(RUST_LOG=trapline::trap=trace cargo run --quiet --example round_trip 2>&1 >/dev/null |
  grep '^TRACE trapline::trap\] ' || true)
if [ -z "$trace" ]; then
  echo "docs/regen.sh: the example printed no trace line" >&2
  exit 1
fi
guide=docs/how-it-works.md
TRACE="$trace" awk '
  /<!-- trace: begin -->/ { print; print "```text"; print ENVIRON["TRACE"]; print "```"; skip = 1; next }
  /<!-- trace: end -->/ { skip = 0 }
  !skip { print }
' "$guide" > "$guide.new"
mv "$guide.new" "$guide"
echo "$guide: trace block regenerated ($(printf '%s\n' "$trace" | wc -l) lines)"
