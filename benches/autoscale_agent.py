#!/usr/bin/env python3
"""Measure the agent's CPU with 200 autoscaled deployments, beside the same 200 without.

Two agents on temporary homes run side by side, each with 200 deployments
of one `sleep 3600` replica, a 100m CPU request and `monitoring: {
interval: 15s }`. The first agent's deployments have `autoScaling` (1 to
3 replicas, 80% CPU, the default 15 s period). The second's are the same
without it, which makes that agent the peer in the same run. The
replicas sleep, so every evaluation keeps the count. The cost measured
is the evaluation itself (reading the replicas, the algorithm, storing
each decision), not the scaling.

The script measures each agent's CPU (utime + stime from /proc/PID/stat)
over fixed windows, alternating between the two so that drift in the
machine's load falls on both alike. The autoscaler's cost is the
difference of the two medians.

The report is a Markdown table of medians on standard output, and the
progress goes to standard error. Rerun it as BENCHMARKS.md shows. It reuses
the process helpers of `pm2_compare.py` in the same directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Import the sibling script without leaving a __pycache__ folder in the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import pm2_compare as common  # noqa: E402  (the benches folder is not a package)
from pm2_compare import BenchError, cpu_seconds, progress, rss_kib, run  # noqa: E402

DEPLOYMENTS = 200

# Seconds after the last deploy before a window opens, so that the first
# evaluations and the start-up work are not counted.
SETTLE = 30.0


def manifest(name: str, sleep: str, token: str, autoscaled: bool) -> str:
    text = (
        f"name: {name}\n"
        "environment: bench\n"
        f'run:\n  command: ["{sleep}", "3600"]\n'
        "resources:\n  requests: { cpu: 100m, memory: 16Mi }\n"
        "monitoring: { interval: 15s }\n"
        f'env:\n  {common.MARKER}: "{token}"\n'
        "tags: [bench]\n"
    )
    if autoscaled:
        text += "autoScaling: { minReplicas: 1, maxReplicas: 3, targetCPUUtilization: 80 }\n"
    return text


def deploy_all(shipdeck: common.Shipdeck, sleep: str, token: str, autoscaled: bool) -> None:
    for index in range(DEPLOYMENTS):
        path = shipdeck.work / f"as{index}.yaml"
        path.write_text(manifest(f"as{index}", sleep, token, autoscaled))
        run([shipdeck.binary, "deploy", "-f", str(path), "--wait"], shipdeck.env)


def agent_cpu(pid: int, window: float) -> float:
    """Milliseconds of CPU per second that the agent used over `window` seconds."""
    start = cpu_seconds(pid)
    time.sleep(window)
    return (cpu_seconds(pid) - start) * 1000.0 / window


def alternate(agents: list[tuple[str, int]], runs: int, window: float) -> dict[str, list[float]]:
    """Measures one window of each agent in turn, `runs` times."""
    samples: dict[str, list[float]] = {label: [] for label, _ in agents}
    for index in range(runs):
        for label, pid in agents:
            sample = agent_cpu(pid, window)
            progress(f"{label}: window {index + 1} of {runs}: {sample:.2f} ms/s")
            samples[label].append(sample)
    return samples


def decisions_stored(shipdeck: common.Shipdeck) -> int:
    """Counts the decisions that the first deployment has stored, as a check
    that the autoscaler ran during the windows."""
    _, out = run(
        [shipdeck.binary, "autoscale", "status", "as0", "--decisions", "1000", "-o", "json"],
        shipdeck.env,
    )
    return len(json.loads(out).get("decisions", []))


def stop_leftovers(token: str) -> None:
    """Waits for the agent stop to end the replicas, then kills what is left by pid."""
    deadline = time.monotonic() + 15.0
    while (left := common.marked_processes(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def describe(samples: list[float]) -> str:
    text = f"{statistics.median(samples):.2f}"
    if len(samples) > 1:
        text += f" ({min(samples):.2f}–{max(samples):.2f})"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    parser.add_argument("--bin-dir", type=Path, default=target / "release")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()

    sleep = shutil.which("sleep")
    if sleep is None:
        raise BenchError("`sleep` is not on PATH; install coreutils")
    token = secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="shipdeck-bench-autoscale-") as scratch:
        agents = []
        for label in ("autoscaled", "peer"):
            work = Path(scratch) / label
            home = work / "home"
            home.mkdir(parents=True, mode=0o700)
            agents.append(common.Shipdeck(args.bin_dir, home, token, work))
        autoscaled, peer = agents
        try:
            for shipdeck, is_autoscaled in ((autoscaled, True), (peer, False)):
                shipdeck.start_daemon()
                progress(f"deploying {DEPLOYMENTS} deployments (autoscaled: {is_autoscaled})")
                deploy_all(shipdeck, sleep, token, is_autoscaled)
            time.sleep(SETTLE)
            samples = alternate(
                [("autoscaling on", autoscaled.pid), ("autoscaling off", peer.pid)],
                args.runs,
                args.window,
            )
            on, off = samples["autoscaling on"], samples["autoscaling off"]
            stored = decisions_stored(autoscaled)
            rss_on = rss_kib(autoscaled.pid) / 1024.0
            rss_off = rss_kib(peer.pid) / 1024.0
        finally:
            for shipdeck in agents:
                shipdeck.stop_daemon()
            stop_leftovers(token)

    cost = statistics.median(on) - statistics.median(off)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}")
    print(f"Runs: {args.runs} windows of {args.window:.0f} s each\n")
    print("| measurement | median (min–max) |")
    print("|---|---|")
    print(f"| agent CPU, 200 autoscaled deployments (ms/s) | {describe(on)} |")
    print(f"| agent CPU, the same 200 without autoscaling (ms/s) | {describe(off)} |")
    print(f"| autoscaler's share (difference of medians, ms/s) | {cost:.2f} |")
    print(f"| agent RSS at the end (MiB) | {rss_on:.1f} with, {rss_off:.1f} without |")
    print(f"| decisions stored for one deployment during the windows | {stored} |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"autoscale_agent.py: {error}", file=sys.stderr)
        sys.exit(1)
