#!/usr/bin/env bash
# Measures the stable endpoint's overhead: HTTP requests per second and p50/p99
# latency from wrk against one shipdeck-sample replica, directly and through the
# endpoint (examples/endpoint_bench.rs), all on 127.0.0.1. Prints the median of
# RUNS runs for each path as a Markdown table, first under load (THREADS threads,
# CONNECTIONS connections), then with 1 connection, where latency is the time of
# one request through each hop rather than time spent queued for a CPU.
#
# Usage: benches/endpoint_proxy.sh
# Settings (environment): RUNS=3 DURATION=10s THREADS=2 CONNECTIONS=32
#   CARGO_TARGET_DIR (default: target)
# Needs: cargo, wrk (Debian: apt-get install wrk), python3 (to find free ports).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "endpoint_proxy: $1 is required but not installed" >&2
        exit 1
    }
}
need cargo
need wrk
need python3

echo "== building shipdeck-sample and the endpoint_bench example (release)" >&2
cargo build --release --locked --bin shipdeck-sample --example endpoint_bench >&2

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

wait_for_port() {
    local port="$1"
    for _ in $(seq 1 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "endpoint_proxy: nothing listens on 127.0.0.1:$port after 10 s" >&2
    exit 1
}

replica_port="$(free_port)"
endpoint_port="$(free_port)"

"$TARGET_DIR/release/shipdeck-sample" serve --port "$replica_port" --log-rate 0 >/dev/null 2>&1 &
pids+=("$!")
wait_for_port "$replica_port"

SHIPDECK_LOG=warn "$TARGET_DIR/release/examples/endpoint_bench" \
    --listen "127.0.0.1:$endpoint_port" --backend "127.0.0.1:$replica_port" >/dev/null 2>&1 &
pids+=("$!")
wait_for_port "$endpoint_port"

# Prints "requests_per_second p50_us p99_us" for one wrk run against a port.
measure() {
    local port="$1" duration="$2" threads="$3" connections="$4"
    wrk -t"$threads" -c"$connections" -d"$duration" --latency "http://127.0.0.1:$port/" | awk '
        function to_us(value) {
            if (value ~ /us$/) return value + 0
            if (value ~ /ms$/) return value * 1000
            if (value ~ /s$/) return value * 1000000
            return value
        }
        $1 == "50%" { p50 = to_us($2) }
        $1 == "99%" { p99 = to_us($2) }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx or 3xx responses|Socket errors/ { print "endpoint_proxy: wrk reported: " $0 > "/dev/stderr" }
        END { printf "%s %s %s\n", rps, p50, p99 }'
}

median() {
    sort -g | awk '{ values[NR] = $1 } END { print values[int((NR + 1) / 2)] }'
}

column_median() {
    local column="$1"
    shift
    printf '%s\n' "$@" | awk -v c="$column" '{ print $c }' | median
}

# Runs both paths RUNS times with the given wrk threads and connections and prints
# the median of each column, and the targets when the third argument is "targets".
compare() {
    local threads="$1" connections="$2" show_targets="${3:-}"
    local direct_results=() endpoint_results=()

    echo "== wrk -t$threads -c$connections: warming up both paths for 2 s each" >&2
    measure "$replica_port" 2s "$threads" "$connections" >/dev/null
    measure "$endpoint_port" 2s "$threads" "$connections" >/dev/null

    for run in $(seq 1 "$RUNS"); do
        # Alternating the paths spreads slow drifts in machine load over both.
        direct_results+=("$(measure "$replica_port" "$DURATION" "$threads" "$connections")")
        endpoint_results+=("$(measure "$endpoint_port" "$DURATION" "$threads" "$connections")")
        echo "run $run: direct ${direct_results[-1]} | endpoint ${endpoint_results[-1]} (rps p50_us p99_us)" >&2
    done

    awk -v dr="$(column_median 1 "${direct_results[@]}")" \
        -v d50="$(column_median 2 "${direct_results[@]}")" \
        -v d99="$(column_median 3 "${direct_results[@]}")" \
        -v er="$(column_median 1 "${endpoint_results[@]}")" \
        -v e50="$(column_median 2 "${endpoint_results[@]}")" \
        -v e99="$(column_median 3 "${endpoint_results[@]}")" \
        -v runs="$RUNS" -v duration="$DURATION" -v threads="$threads" -v connections="$connections" \
        -v show_targets="$show_targets" '
    BEGIN {
        ratio = er / dr * 100
        added50 = e50 - d50
        printf "wrk -t%s -c%s -d%s, median of %s runs per path, each column on its own\n\n", threads, connections, duration, runs
        print "| path | requests/s | p50 (µs) | p99 (µs) |"
        print "| --- | ---: | ---: | ---: |"
        printf "| direct to the replica | %.0f | %.0f | %.0f |\n", dr, d50, d99
        printf "| through the endpoint | %.0f | %.0f | %.0f |\n", er, e50, e99
        if (show_targets == "targets") {
            printf "\nthroughput through the endpoint: %.1f%% of direct (target: at least 80%%): %s\n", ratio, (ratio >= 80 ? "met" : "not met")
            printf "added p50: %.0f µs (target: under 100 µs): %s\n", added50, (added50 < 100 ? "met" : "not met")
        } else {
            printf "\nthroughput through the endpoint: %.1f%% of direct\n", ratio
            printf "added p50: %.0f µs\n", added50
        }
        printf "added p99: %.0f µs\n\n", e99 - d99
    }'
}

compare "$THREADS" "$CONNECTIONS" targets
compare 1 1
