#!/usr/bin/env python3
"""Measure the dashboard's CPU, memory and first frame beside `pm2 monit`.

Both run in 200x50 tmux panes of a private tmux server, watch the same
number of processes in the same run, and are read from /proc: CPU time
(utime + stime) over a window, and RSS at its end. The script prints a
Markdown table of medians and stops every daemon, pane and replica it
started before it exits.

Rerun it as BENCHMARKS.md shows. It needs tmux, a release build of shipdeck
and a local PM2 (`npm install --prefix DIR pm2`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pm2_compare import (  # noqa: E402  (the helpers live beside this script)
    MARKER,
    BenchError,
    Payload,
    Pm2,
    Shipdeck,
    cpu_seconds,
    marked_processes,
    run,
    rss_kib,
)

# Seconds a pane runs before its window starts, so that start-up work
# (reading the lists, the first metric reads) is not counted as idle.
WARM_UP = 5.0


class Panes:
    """A private tmux server whose panes are 200 columns by 50 rows."""

    def __init__(self, work: Path) -> None:
        self.socket = str(work / "tmux.sock")
        self.count = 0

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise BenchError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def open(self, command: str) -> tuple[str, int]:
        """Start `command` in a new session and return its name and pid."""
        self.count += 1
        name = f"bench{self.count}"
        self.tmux("new-session", "-d", "-s", name, "-x", "200", "-y", "50", command)
        pid = int(self.tmux("display-message", "-p", "-t", name, "#{pane_pid}").strip())
        return name, pid

    def close(self, name: str) -> None:
        self.tmux("kill-session", "-t", name)

    def stop(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


def sample(pid: int, seconds: float) -> tuple[float, int]:
    """Percent of one core used by `pid` over `seconds`, and its RSS in KiB after."""
    time.sleep(WARM_UP)
    before = cpu_seconds(pid)
    time.sleep(seconds)
    used = cpu_seconds(pid) - before
    return 100.0 * used / seconds, rss_kib(pid)


def watched_manifest(shipdeck: Shipdeck, name: str, payload: Payload) -> Path:
    """A one-replica deployment whose metrics are collected every second."""
    text = (
        f"name: {name}\nenvironment: bench\nreplicas: 1\n"
        f'run:\n  command: ["{payload.sleep_binary}", "3600"]\n'
        "monitoring:\n  interval: 1s\n"
        f'env:\n  {MARKER}: "{shipdeck.token}"\ntags: [bench]\n'
    )
    path = shipdeck.work / f"{name}.yaml"
    path.write_text(text)
    return path


def deploy_watched(shipdeck: Shipdeck, prefix: str, payload: Payload, count: int) -> None:
    for index in range(count):
        path = watched_manifest(shipdeck, f"{prefix}{index}", payload)
        run([shipdeck.binary, "deploy", "-f", str(path), "--wait"], shipdeck.env)


def dashboard_command(shipdeck: Shipdeck, stamp: Path | None = None) -> str:
    """The pane's shell command; with `stamp`, it writes the start time first."""
    env = f"env SHIPDECK_HOME='{shipdeck.home}' {MARKER}='{shipdeck.token}'"
    start = f"date +%s%N > '{stamp}'; " if stamp else ""
    return f"{start}exec {env} '{shipdeck.binary}'"


def measure_dashboard(panes: Panes, shipdeck: Shipdeck, seconds: float) -> tuple[float, int]:
    name, pid = panes.open(dashboard_command(shipdeck))
    try:
        return sample(pid, seconds)
    finally:
        panes.close(name)


def measure_monit(panes: Panes, pm2: Pm2, seconds: float) -> tuple[float, int]:
    env = f"env PM2_HOME='{pm2.home}' {MARKER}='{pm2.token}'"
    name, pid = panes.open(f"exec {env} '{pm2.binary}' monit")
    try:
        return sample(pid, seconds)
    finally:
        panes.close(name)


def first_frame(panes: Panes, shipdeck: Shipdeck, work: Path) -> float:
    """Milliseconds from the exec of the dashboard to its first frame with data."""
    log = shipdeck.home / "dashboard.log"
    seen = log.read_text().count("first frame with data") if log.exists() else 0
    stamp = work / "first-frame.start"
    name, _ = panes.open(dashboard_command(shipdeck, stamp))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = [
                line
                for line in (log.read_text().splitlines() if log.exists() else [])
                if "first frame with data" in line
            ]
            if len(lines) > seen:
                drawn = int(lines[-1].rsplit("at_unix_ns=", 1)[1].split()[0])
                started = int(stamp.read_text().strip())
                return (drawn - started) / 1e6
            time.sleep(0.05)
        raise BenchError(f"no first frame logged in {log} within 30 s")
    finally:
        panes.close(name)


def describe(samples: list[float], unit: str, digits: int = 2) -> str:
    low, high = min(samples), max(samples)
    return f"{statistics.median(samples):.{digits}f} {unit} ({low:.{digits}f}–{high:.{digits}f})"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", type=Path, required=True, help="directory of the release shipdeck binary")
    parser.add_argument("--pm2", type=Path, required=True, help="the pm2 executable")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each CPU window")
    parser.add_argument("--reps", type=int, default=3, help="windows per case")
    parser.add_argument("--idle", type=int, default=100, help="deployments in the idle case")
    parser.add_argument("--watch", type=int, nargs="+", default=[50, 200], help="processes watched")
    parser.add_argument("--frames", type=int, default=5, help="first-frame measurements")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if shutil.which("tmux") is None:
        print("tmux is needed: apt-get install tmux", file=sys.stderr)
        return 2
    token = secrets.token_hex(8)
    sleep = shutil.which("sleep") or "/bin/sleep"
    payload = Payload(kind="sleep", sleep_binary=sleep, sample_binary=args.bin_dir / "shipdeck-sample")
    with tempfile.TemporaryDirectory(prefix="shipdeck-dash-bench-") as scratch:
        work = Path(scratch)
        panes = Panes(work)
        pm2 = Pm2(args.pm2, work / "pm2-home", token, work)
        try:
            report = collect(args, panes, pm2, payload, work, token)
        finally:
            panes.stop()
            pm2.stop_daemon()
        # Daemons end their children a moment after they return.
        deadline = time.monotonic() + 10
        while (left := marked_processes(token)) and time.monotonic() < deadline:
            time.sleep(0.2)
    print(report)
    if left:
        print(f"processes of this run still alive: {left}", file=sys.stderr)
        return 1
    return 0


class Agent:
    """A shipdeck agent on a home of its own, so that each case lists only its deployments."""

    def __init__(self, args, work: Path, token: str, case: str) -> None:
        self.shipdeck = Shipdeck(args.bin_dir, work / f"home-{case}", token, work)

    def __enter__(self) -> Shipdeck:
        self.shipdeck.start_daemon()
        return self.shipdeck

    def __exit__(self, *_exc) -> None:
        self.shipdeck.stop_daemon()


def collect(args, panes: Panes, pm2: Pm2, payload: Payload, work: Path, token: str) -> str:
    pm2.start_daemon()
    lines = [
        f"{os.cpu_count()} cores; {args.seconds:.0f} s windows, {args.reps} per case; medians (min–max)",
        "",
        "| case | shipdeck dashboard | pm2 monit | ratio |",
        "| --- | --- | --- | --- |",
    ]

    with Agent(args, work, token, "idle") as shipdeck:
        print(f"idle: deploying {args.idle}", file=sys.stderr)
        shipdeck.deploy_many("idle", payload, args.idle)
        idle = [measure_dashboard(panes, shipdeck, args.seconds) for _ in range(args.reps)]
        cpu = describe([c for c, _ in idle], "%")
        lines.append(f"| idle, {args.idle} deployments, CPU | {cpu} | | |")
        frames = [first_frame(panes, shipdeck, work) for _ in range(args.frames)]
        lines.append(f"| first frame with data, {args.idle} deployments | {describe(frames, 'ms', 0)} | | |")
        shipdeck.remove_many("idle", args.idle)

    for count in args.watch:
        print(f"watching {count}", file=sys.stderr)
        with Agent(args, work, token, f"watch{count}") as shipdeck:
            deploy_watched(shipdeck, "w", payload, count)
            pm2.deploy_many(f"w{count}-", payload, count)
            ours, theirs = [], []
            for _ in range(args.reps):
                ours.append(measure_dashboard(panes, shipdeck, args.seconds))
                theirs.append(measure_monit(panes, pm2, args.seconds))
            shipdeck.remove_many("w", count)
            pm2.remove_many(f"w{count}-", count)
        lines.extend(rows(count, ours, theirs))
    return "\n".join(lines)


def rows(count: int, ours: list[tuple[float, int]], theirs: list[tuple[float, int]]) -> list[str]:
    cpu = ([c for c, _ in ours], [c for c, _ in theirs])
    rss = ([r / 1024 for _, r in ours], [r / 1024 for _, r in theirs])
    ratio = lambda pair: statistics.median(pair[0]) / statistics.median(pair[1])  # noqa: E731
    return [
        f"| watching {count}, CPU | {describe(cpu[0], '%')} | {describe(cpu[1], '%')} | {ratio(cpu):.3f} |",
        f"| watching {count}, RSS | {describe(rss[0], 'MiB', 1)} | {describe(rss[1], 'MiB', 1)} | {ratio(rss):.3f} |",
    ]


if __name__ == "__main__":
    sys.exit(main())
