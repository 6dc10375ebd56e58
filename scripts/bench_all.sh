#!/usr/bin/env bash
# Every table and the plot of the README's performance section, in one run:
#
#   scripts/bench_all.sh
#
# `cargo bench` runs the echo bench (echo.md, echo.json, echo.svg), the
# kernel micro benches (kernel.md, kernel.json), memory and timer lateness
# (resources.md, timers.md), and the hooks and sync benches; then the echo
# bench counts syscalls per message (syscalls.md), which needs `strace`, and
# `perf` for the figures to compare (without it, strace's figures stand
# alone). Everything lands in benches/results/, each file opening with the
# machine it ran on; then scripts/readme_results.sh copies the tables into
# README.md. The memory bench needs about 11,000 open files in each
# of its processes (it raises its own soft limit, up to the hard one).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench
if command -v strace >/dev/null; then
    cargo bench --bench echo -- --syscalls
else
    echo "strace not found: syscalls.md not regenerated" >&2
fi
scripts/readme_results.sh
ls -l benches/results/
