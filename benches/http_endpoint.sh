#!/usr/bin/env bash
# Measures what the HTTP-aware stable endpoint costs over the plain TCP one: wrk
# sends GET / to one shipdeck-sample replica directly, through a TCP endpoint and
# through an HTTP endpoint (examples/endpoint_bench.rs, with and without --http),
# all on 127.0.0.1. Prints, as Markdown, the median of RUNS runs per path of
# requests/s and p50/p99 latency, then the ratios HTTP/TCP and TCP/direct. It
# measures first under load (THREADS threads, CONNECTIONS connections), then with
# 1 connection, where latency is the time of one request through each hop rather
# than time spent queued for a CPU. Last, it compares the requests that the HTTP endpoint
# counted with the requests that wrk completed through it.
#
# Usage: benches/http_endpoint.sh
# Settings (environment): RUNS=5 DURATION=10s THREADS=2 CONNECTIONS=32
#   CARGO_TARGET_DIR (default: target)
# Needs: cargo, python3 (to find free ports), wrk (installed with apt-get when
# missing and the script runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-5}"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "http_endpoint: $1 is required but not installed" >&2
        exit 1
    }
}

if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing wrk with apt-get" >&2
    apt-get install -y wrk >&2
fi
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
    echo "http_endpoint: nothing listens on 127.0.0.1:$port after 10 s" >&2
    exit 1
}

replica_port="$(free_port)"
tcp_port="$(free_port)"
http_port="$(free_port)"
http_counts="$(mktemp)"
wrk_counts="$(mktemp)"

"$TARGET_DIR/release/shipdeck-sample" serve --port "$replica_port" --log-rate 0 >/dev/null 2>&1 &
pids+=("$!")
wait_for_port "$replica_port"

SHIPDECK_LOG=warn "$TARGET_DIR/release/examples/endpoint_bench" \
    --listen "127.0.0.1:$tcp_port" --backend "127.0.0.1:$replica_port" >/dev/null 2>&1 &
pids+=("$!")
SHIPDECK_LOG=warn "$TARGET_DIR/release/examples/endpoint_bench" --http \
    --listen "127.0.0.1:$http_port" --backend "127.0.0.1:$replica_port" >"$http_counts" 2>&1 &
http_pid="$!"
pids+=("$http_pid")
wait_for_port "$tcp_port"
wait_for_port "$http_port"

# Prints "requests_per_second p50_us p99_us requests" for one wrk run against a port.
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
        $2 == "requests" && $3 == "in" { requests = $1 }
        /Non-2xx or 3xx responses|Socket errors/ { print "http_endpoint: wrk reported: " $0 > "/dev/stderr" }
        END { printf "%s %s %s %s\n", rps, p50, p99, requests }'
}

# Runs measure against the HTTP endpoint and notes how many requests wrk completed,
# in a file because callers run it in a subshell.
measure_http() {
    local result
    result="$(measure "$http_port" "$@")"
    awk '{ print $4 }' <<<"$result" >>"$wrk_counts"
    echo "$result"
}

median() {
    sort -g | awk '{ values[NR] = $1 } END { print values[int((NR + 1) / 2)] }'
}

column_median() {
    local column="$1"
    shift
    printf '%s\n' "$@" | awk -v c="$column" '{ print $c }' | median
}

# Runs the three paths RUNS times with the given wrk threads and connections and
# prints the median of each column with the ratios.
compare() {
    local threads="$1" connections="$2"
    local direct=() tcp=() http=()

    echo "== wrk -t$threads -c$connections: warming up each path for 2 s" >&2
    measure "$replica_port" 2s "$threads" "$connections" >/dev/null
    measure "$tcp_port" 2s "$threads" "$connections" >/dev/null
    measure_http 2s "$threads" "$connections" >/dev/null

    for run in $(seq 1 "$RUNS"); do
        # Rotating the order spreads slow drifts in machine load over all paths.
        case $((run % 3)) in
            1)
                direct+=("$(measure "$replica_port" "$DURATION" "$threads" "$connections")")
                tcp+=("$(measure "$tcp_port" "$DURATION" "$threads" "$connections")")
                http+=("$(measure_http "$DURATION" "$threads" "$connections")")
                ;;
            2)
                tcp+=("$(measure "$tcp_port" "$DURATION" "$threads" "$connections")")
                http+=("$(measure_http "$DURATION" "$threads" "$connections")")
                direct+=("$(measure "$replica_port" "$DURATION" "$threads" "$connections")")
                ;;
            0)
                http+=("$(measure_http "$DURATION" "$threads" "$connections")")
                direct+=("$(measure "$replica_port" "$DURATION" "$threads" "$connections")")
                tcp+=("$(measure "$tcp_port" "$DURATION" "$threads" "$connections")")
                ;;
        esac
        echo "run $run: direct ${direct[-1]} | tcp ${tcp[-1]} | http ${http[-1]} (rps p50_us p99_us requests)" >&2
    done

    awk -v dr="$(column_median 1 "${direct[@]}")" \
        -v d50="$(column_median 2 "${direct[@]}")" \
        -v d99="$(column_median 3 "${direct[@]}")" \
        -v tr="$(column_median 1 "${tcp[@]}")" \
        -v t50="$(column_median 2 "${tcp[@]}")" \
        -v t99="$(column_median 3 "${tcp[@]}")" \
        -v hr="$(column_median 1 "${http[@]}")" \
        -v h50="$(column_median 2 "${http[@]}")" \
        -v h99="$(column_median 3 "${http[@]}")" \
        -v runs="$RUNS" -v duration="$DURATION" -v threads="$threads" -v connections="$connections" '
    BEGIN {
        printf "wrk -t%s -c%s -d%s, median of %s runs per path, each column on its own\n\n", threads, connections, duration, runs
        print "| path | requests/s | p50 (µs) | p99 (µs) |"
        print "| --- | ---: | ---: | ---: |"
        printf "| direct to the replica | %.0f | %.0f | %.0f |\n", dr, d50, d99
        printf "| through the TCP endpoint | %.0f | %.0f | %.0f |\n", tr, t50, t99
        printf "| through the HTTP endpoint | %.0f | %.0f | %.0f |\n", hr, h50, h99
        printf "\nthroughput HTTP/TCP: %.1f%%, TCP/direct: %.1f%%\n", hr / tr * 100, tr / dr * 100
        printf "added p50: HTTP over TCP %.0f µs, TCP over direct %.0f µs\n", h50 - t50, t50 - d50
        printf "added p99: HTTP over TCP %.0f µs, TCP over direct %.0f µs\n\n", h99 - t99, t99 - d99
    }'
}

compare "$THREADS" "$CONNECTIONS"
compare 1 1

kill -TERM "$http_pid"
wait "$http_pid" 2>/dev/null || true
echo "requests through the HTTP endpoint that wrk completed: $(awk '{ total += $1 } END { print total }' "$wrk_counts")"
echo "requests that the HTTP endpoint counted: $(grep '^requests ' "$http_counts" || echo 'no count printed')"
rm -f "$http_counts" "$wrk_counts"
