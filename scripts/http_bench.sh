#!/usr/bin/env bash
# The same hyper service (examples/http_hello.rs) on trapline and on tokio,
# loaded by wrk over loopback, side by side in one run.
#
#   scripts/http_bench.sh                 # 2 rounds x 5 s each side, 32 connections
#   DURATION=10 ROUNDS=3 CONNS=64 scripts/http_bench.sh
#
# Each server is one thread (trapline: one kernel; tokio: current_thread).
# With 2+ cores the server runs on core 0 and wrk on core 1 (taskset), so
# they do not fight for one core. Rounds alternate trapline/tokio so a noisy
# neighbour hits both. Absolute figures move from machine to machine: read
# the two columns against each other.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-32}
PORT_TRAPLINE=${PORT_TRAPLINE:-18080}
PORT_TOKIO=${PORT_TOKIO:-18081}

if ! command -v wrk >/dev/null; then
    echo "== wrk is missing: installing Debian's package"
    if [ "$(id -u)" = 0 ]; then apt-get install -y wrk; else sudo apt-get install -y wrk; fi
fi

echo "== building examples/http_hello (release)"
cargo build --release --quiet --example http_hello
BIN=target/release/examples/http_hello

SERVER_CPU=() CLIENT_CPU=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_CPU=(taskset -c 0) CLIENT_CPU=(taskset -c 1)
fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

"${SERVER_CPU[@]}" "$BIN" --runtime trapline --addr "127.0.0.1:$PORT_TRAPLINE" >/dev/null &
PIDS+=($!)
"${SERVER_CPU[@]}" "$BIN" --runtime tokio --addr "127.0.0.1:$PORT_TOKIO" >/dev/null &
PIDS+=($!)

# Wait (bounded) until both answer.
for port in "$PORT_TRAPLINE" "$PORT_TOKIO"; do
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.1
    done
done

run() { # runtime port
    local out
    out=$("${CLIENT_CPU[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$2/")
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    printf '%-9s %6s %12s %10s %10s\n' "$1" "$round" "$rps" "$p50" "$p99"
}

echo "== wrk -t1 -c$CONNS -d${DURATION}s, GET / (keep-alive)"
printf '%-9s %6s %12s %10s %10s\n' runtime round req/s p50 p99
for round in $(seq "$ROUNDS"); do
    run trapline "$PORT_TRAPLINE"
    run tokio "$PORT_TOKIO"
done
