#!/usr/bin/env bash
# Copies the latest bench results into README.md, so that the performance
# section always shows one run's figures, as the benches wrote them:
#
#   scripts/readme_results.sh          # rewrite README.md in place
#   scripts/readme_results.sh --check  # exit 1 if README.md differs from the results
#
# A results block in the README is the lines between a marker naming a file
# of benches/results/ and the end marker:
#
#   <!-- results: kernel.md -->
#   ...replaced by the file's contents...
#   <!-- end results -->
#
# `scripts/bench_all.sh` runs it after the benches. The prose around the
# blocks (what the figures mean, which targets are met) is written by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
case "${1:-}" in
    --check) check=true ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

spliced=$(mktemp)
trap 'rm -f "$spliced"' EXIT

awk -v dir=benches/results '
    /^<!-- results: [^ ]+ -->$/ {
        print
        file = dir "/" $3
        if ((getline line < file) < 0) {
            printf "readme_results: %s is missing (run scripts/bench_all.sh)\n", file > "/dev/stderr"
            failed = 1
            exit 1
        }
        print ""
        do { print line } while ((getline line < file) > 0)
        close(file)
        print ""
        skipping = 1
        next
    }
    /^<!-- end results -->$/ {
        if (!skipping) {
            print "readme_results: an end marker without a results marker" > "/dev/stderr"
            failed = 1
            exit 1
        }
        skipping = 0
    }
    !skipping { print }
    END {
        if (skipping && !failed) {
            print "readme_results: a results block is not closed" > "/dev/stderr"
            exit 1
        }
    }
' README.md > "$spliced"

# Trailing blank lines inside a block are folded to one, as in the README.
cat -s "$spliced" > "$spliced.squeezed" && mv "$spliced.squeezed" "$spliced"

if $check; then
    if ! diff -u README.md "$spliced"; then
        echo "readme_results: README.md does not show the latest results" >&2
        exit 1
    fi
else
    cp "$spliced" README.md
fi
