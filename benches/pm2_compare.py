#!/usr/bin/env python3
"""Measure shipdeck beside PM2 in one run, on the same payloads.

Both supervisors run from scratch in a temporary directory (SHIPDECK_HOME and
PM2_HOME), start the same binaries as direct children of their daemon, and
are timed by wall clock around their own command-line clients. The script
prints a Markdown table of medians and shipdeck/PM2 ratios, and stops both
daemons and every replica before it exits.

Rerun it as BENCHMARKS.md shows. It needs a release build of shipdeck and a
local PM2 (`npm install --prefix DIR pm2`).
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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Environment variable put into every replica and both daemons, so that the
# leftover check at the end finds exactly the processes of this run.
MARKER = "SHIPDECK_BENCH_RUN"

# How long one timed command or readiness poll may take before the run fails.
COMMAND_TIMEOUT = 120.0

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A command failed or a payload did not come up; the run stops."""


# ---------------------------------------------------------------------------
# Processes and /proc


def run(argv: list[str], env: dict[str, str], check: bool = True) -> tuple[float, str]:
    """Run a command, returning its wall time in seconds and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    elapsed = time.perf_counter() - start

    if check and done.returncode != 0:
        raise BenchError(
            f"`{' '.join(argv)}` exited with {done.returncode}: "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return elapsed, done.stdout


def read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as error:
        raise BenchError(f"cannot read a daemon pid from {path}: {error}") from error


def rss_kib(pid: int) -> int:
    """Resident set size of one process (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no VmRSS line")


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process (utime + stime), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name in field 2 may contain spaces, so split after its ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def marked_processes(token: str) -> list[int]:
    """Pids of live processes whose environment carries this run's marker."""
    needle = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def expect_alive(pids: list[int], name: str) -> None:
    dead = [pid for pid in pids if not Path(f"/proc/{pid}").exists()]
    if dead:
        raise BenchError(
            f"{name}: replica pids {dead} are reported but not running; "
            "see the replica logs of that tool"
        )


def free_port_base(count: int) -> int:
    """First port of `count` consecutive ports that can all be bound now."""
    for base in range(21000, 30000, count + 10):
        if all(port_is_free(base + offset) for offset in range(count)):
            return base
    raise BenchError(
        f"found no {count} consecutive free ports between 21000 and 30000; "
        "stop what listens there and rerun"
    )


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until_healthy(ports: list[int], deadline: float) -> None:
    """Poll GET /healthz on every port until each has returned 200."""
    waiting = set(ports)
    while waiting:
        for port in sorted(waiting):
            if healthz_ok(port):
                waiting.discard(port)
        if not waiting:
            return
        if time.perf_counter() > deadline:
            raise BenchError(
                f"ports {sorted(waiting)} did not return 200 from /healthz within "
                f"{COMMAND_TIMEOUT:.0f} s; see the PM2 logs under PM2_HOME"
            )
        time.sleep(0.005)


def healthz_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


# ---------------------------------------------------------------------------
# The two supervisors behind one small interface


@dataclass
class Payload:
    """The program a deployment runs: `sleep 3600`, or the sample HTTP workload."""

    kind: str  # "sleep" or "sample"
    sleep_binary: str
    sample_binary: Path


class Shipdeck:
    label = "shipdeck"

    def __init__(self, bin_dir: Path, home: Path, token: str, work: Path) -> None:
        self.binary = str(bin_dir / "shipdeck")
        self.home = home
        self.work = work
        self.token = token
        self.env = dict(os.environ, SHIPDECK_HOME=str(home), **{MARKER: token})
        self.pid = 0

    def start_daemon(self) -> None:
        run([self.binary, "agent", "--detach"], self.env)
        self.pid = read_pid(self.home / "run" / "agent.pid")
        # The manifests deploy to `bench`, which has to exist; its one
        # variable is the marker every replica carries anyway.
        run([self.binary, "env", "set", "bench", f"{MARKER}={self.token}"], self.env)

    def round_trip(self) -> float:
        return run([self.binary, "agent", "status"], self.env)[0]

    def manifest(self, name: str, payload: Payload, replicas: int) -> Path:
        if payload.kind == "sleep":
            body = f'run:\n  command: ["{payload.sleep_binary}", "3600"]\n'
        else:
            # No hostPort: every replica gets a free port, and the health
            # check decides when it is ready.
            body = (
                f'run:\n  command: ["{payload.sample_binary}", "serve", "--log-rate", "0"]\n'
                "ports:\n  - { name: http, containerPort: 8080 }\n"
                "healthCheck:\n  type: http\n  path: /healthz\n  port: 8080\n"
            )
        text = (
            f"name: {name}\nenvironment: bench\nreplicas: {replicas}\n{body}"
            f'env:\n  {MARKER}: "{self.token}"\ntags: [bench]\n'
        )
        path = self.work / f"{name}.yaml"
        path.write_text(text)
        return path

    def deploy(self, name: str, payload: Payload, replicas: int) -> float:
        path = self.manifest(name, payload, replicas)
        elapsed, _ = run([self.binary, "deploy", "-f", str(path), "--wait"], self.env)
        self.expect_ready(name, replicas)
        return elapsed

    def scale(self, name: str, replicas: int) -> float:
        argv = [self.binary, "scale", name, "--replicas", str(replicas), "--wait"]
        elapsed, _ = run(argv, self.env)
        self.expect_ready(name, replicas)
        return elapsed

    def expect_ready(self, name: str, replicas: int) -> None:
        """Check outside the timing that the replicas run and each endpoint returns 200."""
        _, out = run([self.binary, "get", name, "-o", "json"], self.env)
        deployment = json.loads(out)
        ready = deployment["replicas"]["ready"]
        if ready != replicas:
            raise BenchError(
                f"shipdeck deployment {name} has {ready} of {replicas} replicas ready "
                "after `deploy --wait`; see `shipdeck get` and the agent log"
            )

        expect_alive([replica["pid"] for replica in deployment["replicaDetails"]], name)
        for endpoint in deployment["endpoints"]:
            port = int(endpoint.rsplit(":", 1)[1])
            if not healthz_ok(port):
                raise BenchError(
                    f"shipdeck deployment {name} is ready but GET {endpoint}/healthz "
                    "did not return 200; see `shipdeck logs` for the replica"
                )

    def deploy_many(self, prefix: str, payload: Payload, count: int) -> None:
        for index in range(count):
            path = self.manifest(f"{prefix}{index}", payload, 1)
            run([self.binary, "deploy", "-f", str(path), "--wait"], self.env)

    def remove_many(self, prefix: str, count: int) -> None:
        for index in range(count):
            self.remove(f"{prefix}{index}")

    def get_json(self, name: str) -> float:
        elapsed, out = run([self.binary, "get", name, "-o", "json"], self.env)
        json.loads(out)
        return elapsed

    def remove(self, name: str) -> None:
        run([self.binary, "undeploy", name, "--wait"], self.env)

    def list_json(self) -> float:
        elapsed, out = run([self.binary, "ls", "-o", "json"], self.env)
        json.loads(out)
        return elapsed

    def stop_daemon(self) -> None:
        run([self.binary, "agent", "stop"], self.env, check=False)


class Pm2:
    label = "PM2"

    def __init__(self, binary: Path, home: Path, token: str, work: Path) -> None:
        self.binary = str(binary)
        self.home = home
        self.work = work
        self.token = token
        self.env = dict(os.environ, PM2_HOME=str(home), **{MARKER: token})
        self.pid = 0
        self.ports: dict[str, int] = {}

    def start_daemon(self) -> None:
        # Any pm2 command starts the daemon (God) when none runs for PM2_HOME.
        run([self.binary, "ping"], self.env)
        self.pid = read_pid(self.home / "pm2.pid")

    def round_trip(self) -> float:
        return run([self.binary, "ping"], self.env)[0]

    def ecosystem(self, name: str, payload: Payload, replicas: int) -> Path:
        # Fork mode runs any binary as a direct child of the daemon, the way
        # shipdeck runs a replica; cluster mode (`-i`) is for Node.js scripts.
        app = {
            "name": name,
            "interpreter": "none",
            "exec_mode": "fork",
            "instances": replicas,
            "autorestart": True,
            "env": {MARKER: self.token},
        }
        if payload.kind == "sleep":
            app.update(script=payload.sleep_binary, args=["3600"])
        else:
            base = free_port_base(replicas)
            self.ports[name] = base
            app.update(
                script=str(payload.sample_binary),
                args=["serve", "--log-rate", "0"],
                increment_var="PORT",
            )
            app["env"]["PORT"] = str(base)
        path = self.work / f"{name}.pm2.json"
        path.write_text(json.dumps({"apps": [app]}))
        return path

    def deploy(self, name: str, payload: Payload, replicas: int) -> float:
        """Time `pm2 start` and, for the sample workload, until every port returns 200."""
        path = self.ecosystem(name, payload, replicas)
        start = time.perf_counter()
        run([self.binary, "start", str(path)], self.env)
        if payload.kind == "sample":
            base = self.ports[name]
            ports = [base + offset for offset in range(replicas)]
            wait_until_healthy(ports, start + COMMAND_TIMEOUT)
        elapsed = time.perf_counter() - start
        self.expect_online(name, replicas)
        return elapsed

    def start_only(self, name: str, payload: Payload, replicas: int) -> float:
        """Time `pm2 start` alone, without waiting for ports."""
        path = self.ecosystem(name, payload, replicas)
        elapsed, _ = run([self.binary, "start", str(path)], self.env)
        self.expect_online(name, replicas)
        return elapsed

    def scale(self, name: str, replicas: int) -> float:
        elapsed, _ = run([self.binary, "scale", name, str(replicas)], self.env)
        self.expect_online(name, replicas)
        return elapsed

    def expect_online(self, name: str, replicas: int) -> None:
        _, out = run([self.binary, "jlist"], self.env)
        online = [
            process["pid"]
            for process in json.loads(out)
            if process["name"] == name and process["pm2_env"]["status"] == "online"
        ]
        if len(online) != replicas:
            raise BenchError(
                f"PM2 app {name} has {len(online)} of {replicas} processes online; "
                "see `pm2 logs` with the same PM2_HOME"
            )
        expect_alive(online, name)

    def deploy_many(self, prefix: str, payload: Payload, count: int) -> None:
        apps = [
            {
                "name": f"{prefix}{index}",
                "interpreter": "none",
                "exec_mode": "fork",
                "script": payload.sleep_binary,
                "args": ["3600"],
                "env": {MARKER: self.token},
            }
            for index in range(count)
        ]
        path = self.work / f"{prefix}.pm2.json"
        path.write_text(json.dumps({"apps": apps}))
        run([self.binary, "start", str(path)], self.env)

    def remove_many(self, prefix: str, count: int) -> None:
        run([self.binary, "delete", str(self.work / f"{prefix}.pm2.json")], self.env)

    def remove(self, name: str) -> None:
        run([self.binary, "delete", name], self.env)

    def list_json(self) -> float:
        elapsed, out = run([self.binary, "jlist"], self.env)
        json.loads(out)
        return elapsed

    def stop_daemon(self) -> None:
        run([self.binary, "kill"], self.env, check=False)


# ---------------------------------------------------------------------------
# Results


@dataclass
class Row:
    """One measurement: samples of both tools, and the target for shipdeck."""

    title: str
    unit: str  # "ms", "MiB" or "% of a core"
    shipdeck: list[float] = field(default_factory=list)
    pm2: list[float] = field(default_factory=list)
    target: str = ""
    # Largest allowed shipdeck/PM2 ratio, or None when the target is absolute
    # or there is none.
    max_ratio: float | None = None
    # Largest allowed shipdeck value, for targets that do not compare.
    max_value: float | None = None
    strict: bool = True  # whether the target needs "under" rather than "at most"


def describe(samples: list[float], unit: str) -> str:
    if not samples:
        return "–"
    digits = 3 if unit == "% of a core" else 1
    median = f"{statistics.median(samples):.{digits}f}"
    if len(samples) == 1:
        return median
    return f"{median} ({min(samples):.{digits}f}–{max(samples):.{digits}f})"


def verdict(row: Row) -> str:
    if not row.target:
        return ""
    value = statistics.median(row.shipdeck)
    if row.max_value is not None:
        met = value < row.max_value if row.strict else value <= row.max_value
    else:
        reference = statistics.median(row.pm2)
        if reference <= 0:
            return "no PM2 value to compare"
        ratio = value / reference
        met = ratio < row.max_ratio if row.strict else ratio <= row.max_ratio
    return "met" if met else "**not met**"


def table(rows: list[Row]) -> str:
    lines = [
        "| Measurement | shipdeck | PM2 | shipdeck/PM2 | Target | Result |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "–"
        if row.shipdeck and row.pm2 and statistics.median(row.pm2) > 0:
            ratio = f"{statistics.median(row.shipdeck) / statistics.median(row.pm2):.2f}"
        lines.append(
            f"| {row.title} ({row.unit}) | {describe(row.shipdeck, row.unit)} "
            f"| {describe(row.pm2, row.unit)} | {ratio} | {row.target or '–'} | {verdict(row)} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The run


def machine_report(shipdeck: Shipdeck, pm2_binary: Path) -> str:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Only changes to the code under test matter, not edits to this script.
    changed = subprocess.run(
        ["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--"]
        + ["src", "Cargo.toml", "Cargo.lock"],
    ).returncode
    if changed:
        commit += " with uncommitted changes under src/ or in Cargo.*"
    pm2_package = pm2_binary.resolve().parent.parent / "package.json"
    pm2_version = json.loads(pm2_package.read_text()).get("version", "unknown")
    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    return "\n".join(
        [
            f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- machine: {os.cpu_count()} CPUs (nproc), {mem_kib / 1024 / 1024:.1f} GiB memory, "
            f"Linux {platform.release()}",
            f"- shipdeck: commit {commit}, binary {shipdeck.binary}",
            f"- PM2 {pm2_version}, Node.js {node_version.strip()}",
            f"- load average at start: {load_average()}",
        ]
    )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_round_trips(tools: list, calls: int, rows: dict[str, Row]) -> None:
    for _ in range(calls):
        for tool in tools:
            getattr(rows["round_trip"], key(tool)).append(tool.round_trip() * 1000)


def key(tool) -> str:
    return "shipdeck" if isinstance(tool, Shipdeck) else "pm2"


def measure_repetition(tools: list, rep: int, payloads: dict[str, Payload], rows, pm2_start_rows):
    """Time one repetition of every deploy and scale measurement in both tools."""
    cases = [("sleep", 1), ("sleep", 50), ("sample", 1), ("sample", 50)]
    for kind, replicas in cases:
        name = f"{kind}{replicas}-r{rep}"
        for tool in tools:
            seconds = tool.deploy(name, payloads[kind], replicas)
            getattr(rows[f"{kind}{replicas}"], key(tool)).append(seconds * 1000)
            tool.remove(name)

    # The sample workload under PM2 also gets `pm2 start` alone, to show how
    # much of its time is the processes opening their ports.
    pm2 = next(tool for tool in tools if isinstance(tool, Pm2))
    for replicas in (1, 50):
        name = f"pm2only{replicas}-r{rep}"
        seconds = pm2.start_only(name, payloads["sample"], replicas)
        pm2_start_rows[replicas].pm2.append(seconds * 1000)
        pm2.remove(name)

    name = f"scale-r{rep}"
    for tool in tools:
        tool.deploy(name, payloads["sleep"], 1)
        getattr(rows["scale"], key(tool)).append(tool.scale(name, 20) * 1000)
        tool.remove(name)


def measure_two_hundred(tools: list, payloads, rows, list_calls: int, cpu_window: float):
    """Deploy 200 idle replicas in each tool, then list, weigh and watch them."""
    name = "idle200"
    for tool in tools:
        seconds = tool.deploy(name, payloads["sleep"], 200)
        progress(f"{tool.label}: 200 replicas up in {seconds:.2f} s")
        getattr(rows["start200"], key(tool)).append(seconds * 1000)

    for _ in range(list_calls):
        for tool in tools:
            getattr(rows["list200"], key(tool)).append(tool.list_json() * 1000)
        shipdeck = next(tool for tool in tools if isinstance(tool, Shipdeck))
        rows["get200"].shipdeck.append(shipdeck.get_json(name) * 1000)
    rows["get200"].pm2 = list(rows["list200"].pm2)

    for tool in tools:
        getattr(rows["rss200"], key(tool)).append(rss_kib(tool.pid) / 1024)

    progress(f"watching both daemons for {cpu_window:.0f} s with 200 idle replicas each")
    before = {key(tool): cpu_seconds(tool.pid) for tool in tools}
    start = time.perf_counter()
    time.sleep(cpu_window)
    wall = time.perf_counter() - start
    for tool in tools:
        used = cpu_seconds(tool.pid) - before[key(tool)]
        getattr(rows["cpu200"], key(tool)).append(used / wall * 100)

    threads = {tool.label: thread_count(tool.pid) for tool in tools}
    for tool in tools:
        tool.remove(name)
    return threads


def measure_many_deployments(
    tools: list, payloads, rows, list_calls: int, count: int = 200
) -> None:
    """List and weigh 200 deployments of one replica each, the other shape of 200."""
    prefix = "many"
    for tool in tools:
        tool.deploy_many(prefix, payloads["sleep"], count)

    for _ in range(list_calls):
        for tool in tools:
            getattr(rows["list200x1"], key(tool)).append(tool.list_json() * 1000)
    for tool in tools:
        getattr(rows["rss200x1"], key(tool)).append(rss_kib(tool.pid) / 1024)

    for tool in tools:
        tool.remove_many(prefix, count)


def build_rows() -> dict[str, Row]:
    return {
        "round_trip": Row(
            "client round trip: `agent status` / `pm2 ping`", "ms",
            target="under 1/10 of PM2", max_ratio=0.1,
        ),
        "sleep1": Row("deploy 1 `sleep`, ready", "ms"),
        "sleep50": Row(
            "deploy 50 `sleep`, ready", "ms",
            target="at most 1/3 of PM2", max_ratio=1 / 3, strict=False,
        ),
        "sample1": Row("deploy 1 sample, ready (PM2: until /healthz answers)", "ms"),
        "sample50": Row(
            "deploy 50 sample, ready (PM2: until every /healthz answers)", "ms",
            target="at most 1/3 of PM2", max_ratio=1 / 3, strict=False,
        ),
        "scale": Row(
            "scale `sleep` 1 → 20", "ms",
            target="no slower than PM2", max_ratio=1.0, strict=False,
        ),
        "start200": Row("deploy 200 `sleep`, ready (one run)", "ms"),
        "list200": Row(
            "`ls -o json` / `pm2 jlist`, 200 replicas", "ms",
            target="under 1/5 of PM2", max_ratio=0.2,
        ),
        "get200": Row("`get -o json` of the 200-replica deployment / `pm2 jlist`", "ms"),
        "list200x1": Row("`ls -o json` / `pm2 jlist`, 200 deployments of 1 replica", "ms"),
        "rss200x1": Row("daemon RSS, 200 deployments of 1 replica", "MiB"),
        "rss_idle": Row("daemon RSS, nothing deployed", "MiB"),
        "rss200": Row(
            "daemon RSS, 200 idle replicas", "MiB",
            target="at most 1/4 of PM2", max_ratio=0.25, strict=False,
        ),
        "cpu200": Row(
            "daemon CPU, 200 idle replicas", "% of a core",
            target="under 0.5 % of a core", max_value=0.5,
        ),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bin-dir", type=Path, required=True,
        help="directory with the release `shipdeck` and `shipdeck-sample` binaries",
    )
    parser.add_argument(
        "--pm2", type=Path, required=True,
        help="the pm2 executable, such as DIR/node_modules/.bin/pm2 "
        "after `npm install --prefix DIR pm2`",
    )
    parser.add_argument(
        "--reps", type=int, default=5, help="repetitions of each deploy and scale measurement"
    )
    parser.add_argument("--round-trips", type=int, default=20, help="client calls timed per tool")
    parser.add_argument(
        "--list-calls", type=int, default=10, help="listings of 200 replicas timed per tool"
    )
    parser.add_argument(
        "--cpu-seconds", type=float, default=60.0, help="length of the CPU window, in seconds"
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    return parser.parse_args()


def check_inputs(args: argparse.Namespace) -> None:
    for binary in (args.bin_dir / "shipdeck", args.bin_dir / "shipdeck-sample"):
        if not os.access(binary, os.X_OK):
            raise BenchError(
                f"{binary} is not an executable; build with `cargo build --release` "
                "and pass its directory as --bin-dir"
            )
    if not os.access(args.pm2, os.X_OK):
        raise BenchError(
            f"{args.pm2} is not an executable; install PM2 with "
            "`npm install --prefix DIR pm2` and pass DIR/node_modules/.bin/pm2"
        )


def main() -> int:
    args = parse_args()
    try:
        check_inputs(args)
    except BenchError as error:
        print(f"pm2_compare: {error}", file=sys.stderr)
        return 2

    token = secrets.token_hex(4)
    scratch = Path(tempfile.mkdtemp(prefix="shipdeck-pm2-bench-"))
    work = scratch / "manifests"
    work.mkdir()
    shipdeck = Shipdeck(args.bin_dir.resolve(), scratch / "shipdeck", token, work)
    pm2 = Pm2(args.pm2.resolve(), scratch / "pm2", token, work)
    sleep_binary = shutil.which("sleep") or "/bin/sleep"
    sample_binary = (args.bin_dir / "shipdeck-sample").resolve()
    payloads = {kind: Payload(kind, sleep_binary, sample_binary) for kind in ("sleep", "sample")}

    rows = build_rows()
    pm2_start_rows = {
        1: Row("`pm2 start` of 1 sample, returned", "ms"),
        50: Row("`pm2 start` of 50 sample, returned", "ms"),
    }
    status = 0
    try:
        report = collect(args, shipdeck, pm2, payloads, rows, pm2_start_rows, token)
        print(report)
        if args.output:
            args.output.write_text(report + "\n")
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"pm2_compare: {error}", file=sys.stderr)
        status = 1
    finally:
        status = max(status, clean_up([shipdeck, pm2], token))
        shutil.rmtree(scratch, ignore_errors=True)
    return status


def collect(args, shipdeck, pm2, payloads, rows, pm2_start_rows, token) -> str:
    machine = machine_report(shipdeck, args.pm2)
    tools = [shipdeck, pm2]
    for tool in tools:
        tool.start_daemon()
    # Let both daemons finish starting before weighing them.
    time.sleep(2)
    for tool in tools:
        getattr(rows["rss_idle"], key(tool)).append(rss_kib(tool.pid) / 1024)

    progress("timing client round trips")
    measure_round_trips(tools, args.round_trips, rows)

    for rep in range(args.reps):
        progress(f"repetition {rep + 1} of {args.reps}")
        # Alternate who goes first, so that a slow drift hits both alike.
        order = tools if rep % 2 == 0 else list(reversed(tools))
        measure_repetition(order, rep, payloads, rows, pm2_start_rows)

    threads = measure_two_hundred(tools, payloads, rows, args.list_calls, args.cpu_seconds)
    progress("200 deployments of 1 replica each")
    measure_many_deployments(tools, payloads, rows, args.list_calls)

    ordered = [rows[k] for k in ("round_trip", "sleep1", "sleep50", "sample1", "sample50")]
    ordered += [pm2_start_rows[1], pm2_start_rows[50]]
    ordered += [rows[k] for k in ("scale", "start200", "list200", "get200", "list200x1")]
    ordered += [rows[k] for k in ("rss_idle", "rss200", "rss200x1", "cpu200")]
    return "\n".join(
        [
            machine,
            f"- load average at end: {load_average()}",
            f"- threads with 200 replicas: {', '.join(f'{k} {v}' for k, v in threads.items())}",
            f"- repetitions: {args.reps} (round trips: {args.round_trips}, "
            f"listings: {args.list_calls}, "
            f"CPU window: {args.cpu_seconds:.0f} s)",
            "",
            "Times are medians in milliseconds with (min–max) over the repetitions.",
            "",
            table(ordered),
        ]
    )


def clean_up(tools: list, token: str) -> int:
    """Stop both daemons, then kill any process of this run still alive."""
    for tool in tools:
        try:
            tool.stop_daemon()
        except (BenchError, subprocess.TimeoutExpired) as error:
            print(f"pm2_compare: stopping {tool.label} failed: {error}", file=sys.stderr)

    deadline = time.monotonic() + 10
    leftovers = marked_processes(token)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.2)
        leftovers = marked_processes(token)
    if not leftovers:
        return 0

    print(
        f"pm2_compare: processes {leftovers} of this run outlived their daemon; killing them",
        file=sys.stderr,
    )
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return 1


if __name__ == "__main__":
    sys.exit(main())
