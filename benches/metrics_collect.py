#!/usr/bin/env python3
"""Measure the agent's CPU for collecting metrics of 200 replicas, beside a floor.

One agent on a temporary home runs 20 deployments of 10 replicas of
`shipdeck-sample --log-rate 0`, each with `monitoring: { interval: 1s }`.
In every repetition the script measures, over the same fixed window:

- the agent's CPU (utime + stime from /proc/PID/stat) while it collects;
- the floor: `examples/proc_floor` (Rust, std only) reading /proc/PID/stat
  and /proc/PID/statm of the same 200 replica pids once a second;
- the floor scanning all of /proc: the same program reading every
  process's stat once a second, as the agent does to sum by process group.

After those repetitions it times `GET /v1/deployments/NAME/metrics` for
`since=1h` and `since=24h` on what the agent stored so far, and counts the
stored points. Then it redeploys everything with `monitoring: { enabled:
false }` and measures the agent's CPU over the same window again, so the
collection cost is the difference of the two agent medians.

The report is a Markdown table of medians on standard output, and the
progress goes to standard error. Rerun it as BENCHMARKS.md shows. It reuses
the process helpers of `pm2_compare.py` and the API client of
`log_capture.py` in the same directory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Import the sibling scripts without leaving a __pycache__ folder in the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import pm2_compare as common  # noqa: E402  (the benches folder is not a package)
from log_capture import api_get  # noqa: E402
from pm2_compare import BenchError, cpu_seconds, progress, rss_kib  # noqa: E402

DEPLOYMENTS = 20
REPLICAS_EACH = 10

# Requests timed per metrics query. The table shows their median.
QUERY_CALLS = 20


@dataclass
class Row:
    """One measurement with its samples, and its target if it has one."""

    title: str
    unit: str
    samples: list[float] = field(default_factory=list)
    target: str = "–"
    result: str = ""


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def describe(samples: list[float], digits: int = 2) -> str:
    if not samples:
        return "–"
    text = f"{median(samples):.{digits}f}"
    if len(samples) > 1:
        text += f" ({min(samples):.{digits}f}–{max(samples):.{digits}f})"
    return text


# ---------------------------------------------------------------------------
# Deployments


def manifest_text(name: str, sample: Path, token: str, monitoring: str) -> str:
    return (
        f"name: {name}\nenvironment: bench\nreplicas: {REPLICAS_EACH}\n"
        f'run:\n  command: ["{sample}", "--log-rate", "0"]\n'
        "ports:\n  - { containerPort: 8080 }\n"
        "healthCheck:\n  type: http\n  path: /healthz\n  port: 8080\n"
        f"monitoring: {monitoring}\n"
        f'env:\n  {common.MARKER}: "{token}"\ntags: [bench]\n'
    )


def deploy_all(shipdeck: common.Shipdeck, sample: Path, monitoring: str) -> list[int]:
    """Deploy every deployment with `monitoring`, wait until all are ready, return the pids."""
    for index in range(DEPLOYMENTS):
        name = f"m{index}"
        path = shipdeck.work / f"{name}.yaml"
        path.write_text(manifest_text(name, sample, shipdeck.token, monitoring))
        common.run([shipdeck.binary, "deploy", "-f", str(path), "--wait"], shipdeck.env)

    pids = []
    for index in range(DEPLOYMENTS):
        name = f"m{index}"
        shipdeck.expect_ready(name, REPLICAS_EACH)
        _, out = common.run([shipdeck.binary, "get", name, "-o", "json"], shipdeck.env)
        pids += [replica["pid"] for replica in json.loads(out)["replicaDetails"]]
    if len(pids) != DEPLOYMENTS * REPLICAS_EACH:
        raise BenchError(
            f"expected {DEPLOYMENTS * REPLICAS_EACH} replica pids, found {len(pids)}; "
            "see `shipdeck ls` and the agent log"
        )
    return pids


# ---------------------------------------------------------------------------
# CPU windows


def agent_window(pid: int, seconds: float) -> float:
    """Return the agent's CPU over the window, in milliseconds per second."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) * 1000 / seconds


def floor_window(floor: Path, arguments: list[str], seconds: float) -> float:
    """Run the floor program for the window, return its CPU in milliseconds per second."""
    process = subprocess.Popen([str(floor), *arguments], stdin=subprocess.DEVNULL)
    try:
        # Let it start and do its first sweep before the window opens.
        time.sleep(1.5)
        if process.poll() is not None:
            raise BenchError(
                f"{floor} exited with {process.returncode} before the window opened; "
                "run it by hand with the same arguments to see its error"
            )
        before = cpu_seconds(process.pid)
        time.sleep(seconds)
        return (cpu_seconds(process.pid) - before) * 1000 / seconds
    finally:
        process.kill()
        process.wait()


# ---------------------------------------------------------------------------
# Queries


def stored_points(socket_path: Path, name: str) -> int:
    """Count the raw cpu_usage points of the last hour, one per second at most."""
    path = f"/v1/deployments/{name}/metrics?since=1h&step=1s&metric=cpu_usage"
    _, series = api_get(socket_path, path)
    return sum(1 for point in series[0]["points"] if point["value"] is not None)


def time_query(socket_path: Path, name: str, since: str) -> list[float]:
    path = f"/v1/deployments/{name}/metrics?since={since}"
    samples = []
    for _ in range(QUERY_CALLS):
        elapsed, series = api_get(socket_path, path)
        if len(series) != 7:
            raise BenchError(
                f"GET {path} returned {len(series)} series, expected 7; see the agent log"
            )
        samples.append(elapsed * 1000)
    return samples


# ---------------------------------------------------------------------------
# The run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each window")
    parser.add_argument(
        "--window", type=float, default=30.0, help="length of one CPU window, in seconds"
    )
    parser.add_argument(
        "--bin-dir",
        type=Path,
        default=Path(os.environ.get("CARGO_TARGET_DIR", common.REPO / "target")) / "release",
        help="directory with the release `shipdeck`, `shipdeck-sample` and "
        "`examples/proc_floor` binaries (default: $CARGO_TARGET_DIR/release)",
    )
    return parser.parse_args()


def check_inputs(args: argparse.Namespace) -> None:
    for binary in (
        args.bin_dir / "shipdeck",
        args.bin_dir / "shipdeck-sample",
        args.bin_dir / "examples" / "proc_floor",
    ):
        if not os.access(binary, os.X_OK):
            raise BenchError(
                f"{binary} is missing; run `cargo build --release && "
                "cargo build --release --example proc_floor` first"
            )


def build_rows() -> dict[str, Row]:
    return {
        "agent_on": Row("agent CPU, collecting 200 replicas at 1s", "ms CPU/s"),
        "agent_off": Row("agent CPU, monitoring disabled", "ms CPU/s"),
        "floor": Row("floor: stat + statm of the 200 pids", "ms CPU/s"),
        "floor_all": Row("floor: stat of every process in /proc", "ms CPU/s"),
        "query_1h": Row("`GET .../metrics?since=1h`", "ms", target="< 5 ms"),
        "query_24h": Row("`GET .../metrics?since=24h`", "ms", target="< 5 ms"),
    }


def measure(args, shipdeck: common.Shipdeck, rows: dict[str, Row]) -> dict[str, str]:
    sample = args.bin_dir / "shipdeck-sample"
    floor = args.bin_dir / "examples" / "proc_floor"
    facts: dict[str, str] = {}

    progress("deploying 200 replicas with monitoring at 1s")
    pids = deploy_all(shipdeck, sample, "{ interval: 1s }")
    facts["processes"] = str(sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit()))
    for run in range(args.runs):
        rows["agent_on"].samples.append(agent_window(shipdeck.pid, args.window))
        rows["floor"].samples.append(floor_window(floor, [str(pid) for pid in pids], args.window))
        rows["floor_all"].samples.append(floor_window(floor, ["--scan-all"], args.window))
        progress(
            f"run {run + 1}: agent {rows['agent_on'].samples[-1]:.2f}, floor "
            f"{rows['floor'].samples[-1]:.2f}, floor all {rows['floor_all'].samples[-1]:.2f} ms/s"
        )
    facts["rss_on"] = f"{rss_kib(shipdeck.pid) / 1024:.1f}"

    socket_path = shipdeck.home / "run" / "agent.sock"
    facts["points"] = str(stored_points(socket_path, "m0"))
    rows["query_1h"].samples = time_query(socket_path, "m0", "1h")
    rows["query_24h"].samples = time_query(socket_path, "m0", "24h")
    progress(f"{facts['points']} points per series stored; queries timed")

    progress("redeploying with monitoring disabled")
    deploy_all(shipdeck, sample, "{ enabled: false }")
    for run in range(args.runs):
        rows["agent_off"].samples.append(agent_window(shipdeck.pid, args.window))
        sample_text = f"{rows['agent_off'].samples[-1]:.2f}"
        progress(f"run {run + 1}: agent without collection {sample_text} ms/s")
    return facts


def render(rows: dict[str, Row]) -> str:
    cost = median(rows["agent_on"].samples) - median(rows["agent_off"].samples)
    floor = median(rows["floor"].samples)
    floor_all = median(rows["floor_all"].samples)
    for key in ("query_1h", "query_24h"):
        rows[key].result = "met" if median(rows[key].samples) < 5 else "**not met**"

    lines = [
        "| Measurement | Median (min–max) | Target | Result |",
        "|---|---|---|---|",
    ]
    for key in ("agent_on", "agent_off", "floor", "floor_all"):
        row = rows[key]
        lines.append(f"| {row.title} ({row.unit}) | {describe(row.samples)} | – | |")
    verdict = "met" if cost <= 3 * floor else "**not met**"
    lines += [
        f"| collection cost = collecting − disabled (ms CPU/s) | {cost:.2f} | – | |",
        f"| collection cost / floor (200 pids) | {cost / floor:.2f} | ≤ 3 | {verdict} |",
        f"| collection cost / floor scanning all of /proc | {cost / floor_all:.2f} | – | |",
    ]
    for key in ("query_1h", "query_24h"):
        row = rows[key]
        lines.append(
            f"| {row.title} ({row.unit}) | {describe(row.samples, 3)} "
            f"| {row.target} | {row.result} |"
        )
    return "\n".join(lines)


def machine_report(shipdeck: common.Shipdeck) -> str:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    commit = subprocess.run(
        ["git", "-C", str(common.REPO), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return "\n".join(
        [
            f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- machine: {os.cpu_count()} CPUs (nproc), {mem_kib / 1024 / 1024:.1f} GiB memory, "
            f"Linux {platform.release()}",
            f"- shipdeck: commit {commit}, binary {shipdeck.binary}",
            f"- load average at start: {common.load_average()}",
        ]
    )


def main() -> int:
    args = parse_args()
    try:
        check_inputs(args)
    except BenchError as error:
        print(f"metrics_collect: {error}", file=sys.stderr)
        return 2

    token = secrets.token_hex(8)
    scratch = Path(tempfile.mkdtemp(prefix="shipdeck-metrics-bench-"))
    home = scratch / "home"
    home.mkdir(mode=0o700)
    shipdeck = common.Shipdeck(args.bin_dir, home, token, scratch)
    rows = build_rows()
    status = 0
    try:
        header = machine_report(shipdeck)
        shipdeck.start_daemon()
        facts = measure(args, shipdeck, rows)
        print(header)
        print(f"- processes on the machine during the windows: {facts['processes']}")
        print(f"- window: {args.window:.0f} s, runs: {args.runs}")
        print(f"- agent RSS while collecting: {facts['rss_on']} MiB")
        print(f"- points per series stored for the queried deployment: {facts['points']}")
        print(f"- load average at end: {common.load_average()}\n")
        print(render(rows))
    except (BenchError, subprocess.TimeoutExpired, OSError, KeyError) as error:
        print(f"metrics_collect: {error}", file=sys.stderr)
        status = 1
    finally:
        status = max(status, common.clean_up([shipdeck], token))
        shutil.rmtree(scratch, ignore_errors=True)
    return status


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
