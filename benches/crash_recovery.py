#!/usr/bin/env python3
"""Measure the time from a replica's crash to the replica being ready again.

shipdeck runs one replica of `shipdeck-sample serve --log-rate 0` behind a
stable endpoint (a `hostPort`) with an HTTP health check. Each repetition
deploys a fresh deployment, crashes its replica once with `POST /exit?code=1`
and times two moments: `shipdeck get -o json` showing a new pid with
`ready: true`, and the first 200 from GET /healthz through the stable
endpoint. It runs once with the default restart policy and once with
`backoffInitial: 10ms`, which shows the supervisor's own overhead.

When PM2 is given, the script runs it in the same run as a peer: `pm2 start`
of the same binary, crashed the same way, timed until its port returns 200.

Rerun it as BENCHMARKS.md shows. The report goes to standard output and the
progress to standard error. Both daemons and every replica are stopped
before the script exits.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Environment variable set in both daemons and every replica, so that the
# check at the end finds exactly the processes of this run.
MARKER = "SHIPDECK_CRASH_BENCH_RUN"

# Interval between two polls of `shipdeck get` or of an HTTP port, in seconds.
POLL_INTERVAL = 0.010

# How long one command, deploy or recovery may take before the run fails.
TIMEOUT = 60.0


class BenchError(Exception):
    """Error that stops the run: a command failed or a replica did not come back."""


# ---------------------------------------------------------------------------
# Processes, ports and HTTP


def run(argv: list[str], env: dict[str, str]) -> str:
    """Run a command and return its stdout, raising BenchError on a non-zero exit."""
    done = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT
    )
    if done.returncode != 0:
        raise BenchError(
            f"`{' '.join(argv)}` exited with {done.returncode}: "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def free_port() -> int:
    """Return a port that the kernel reported free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def process_exited(pid: int) -> bool:
    """Return whether the process is gone or a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The command name in field 2 may contain spaces, so read after its ')'.
    return stat[stat.rindex(")") + 2] == "Z"


def http_status(method: str, port: int, path: str, timeout: float) -> int | None:
    """Send one request to 127.0.0.1 and return the status, or None when it failed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def crash(port: int) -> None:
    """Ask the sample replica on `port` to exit with status 1."""
    status = http_status("POST", port, "/exit?code=1", timeout=5.0)
    if status != 200:
        raise BenchError(
            f"POST /exit?code=1 to 127.0.0.1:{port} returned {status}; "
            "check that the replica runs shipdeck-sample serve"
        )


def wait_for_exit(pid: int, deadline: float) -> float:
    """Poll every millisecond until `pid` has exited and return that moment."""
    while not process_exited(pid):
        if time.perf_counter() > deadline:
            raise BenchError(f"pid {pid} was still running {TIMEOUT:.0f} s after POST /exit")
        time.sleep(0.001)
    return time.perf_counter()


def wait_for_200(port: int, deadline: float) -> float:
    """Poll GET /healthz on `port` until it returns 200 and return that moment."""
    while True:
        # A stable endpoint keeps a client waiting until a backend is ready,
        # so one request may take as long as the restart itself.
        timeout = max(deadline - time.perf_counter(), 0.1)
        status = http_status("GET", port, "/healthz", timeout=timeout)
        if status == 200:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise BenchError(
                f"GET 127.0.0.1:{port}/healthz did not return 200 within {TIMEOUT:.0f} s "
                f"of the crash (last status: {status})"
            )
        time.sleep(POLL_INTERVAL)


@dataclass
class Recovery:
    """Moments (`time.perf_counter()`) seen by `watch_recovery`, or the error that stopped it."""

    exited: float = 0.0
    endpoint: float = 0.0
    error: str = ""


def watch_recovery(old_pid: int, port: int, deadline: float, out: Recovery) -> None:
    """Store when the old process exited and when `port` next returned 200.

    Polling starts only after the exit, because the replica sends its response
    to `POST /exit` before it exits, so a request could still reach the old process.
    """
    try:
        out.exited = wait_for_exit(old_pid, deadline)
        out.endpoint = wait_for_200(port, deadline)
    except BenchError as error:
        out.error = str(error)


def ms(seconds: float) -> float:
    return seconds * 1000


# ---------------------------------------------------------------------------
# shipdeck


@dataclass
class Case:
    """One row of the report: a supervisor setting and its samples, in ms."""

    title: str
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, column: str, value: float) -> None:
        self.samples.setdefault(column, []).append(value)


class Shipdeck:
    def __init__(self, bin_dir: Path, home: Path, token: str, work: Path) -> None:
        self.binary = str(bin_dir / "shipdeck")
        self.sample = str(bin_dir / "shipdeck-sample")
        self.work = work
        self.token = token
        self.env = dict(os.environ, SHIPDECK_HOME=str(home), **{MARKER: token})
        self.get_times: list[float] = []

    def start_agent(self) -> None:
        run([self.binary, "agent", "--detach"], self.env)

    def stop_agent(self) -> None:
        subprocess.run(
            [self.binary, "agent", "stop"], env=self.env, capture_output=True, timeout=TIMEOUT
        )

    def manifest(self, name: str, host_port: int, backoff: str | None) -> Path:
        restart = f"restartPolicy:\n  backoffInitial: {backoff}\n" if backoff else ""
        text = (
            f"name: {name}\nenvironment: bench\nreplicas: 1\n"
            f'run:\n  command: ["{self.sample}", "serve", "--log-rate", "0"]\n'
            f"ports:\n  - {{ name: http, containerPort: 8080, hostPort: {host_port} }}\n"
            "healthCheck:\n  type: http\n  path: /healthz\n  port: 8080\n  periodSeconds: 1\n"
            f"{restart}"
            f'env:\n  {MARKER}: "{self.token}"\n'
        )
        path = self.work / f"{name}.yaml"
        path.write_text(text)
        return path

    def replica(self, name: str) -> dict:
        """Return the first entry of `replicaDetails`, or an empty dict when there is none."""
        start = time.perf_counter()
        out = run([self.binary, "get", name, "-o", "json"], self.env)
        self.get_times.append(ms(time.perf_counter() - start))
        details = json.loads(out).get("replicaDetails") or [{}]
        return details[0]

    def measure(self, name: str, backoff: str | None, case: Case) -> str:
        """Deploy, crash the replica once, time its recovery and undeploy."""
        host_port = free_port()
        path = self.manifest(name, host_port, backoff)
        run([self.binary, "deploy", "-f", str(path), "--wait"], self.env)
        try:
            return self.crash_and_time(name, host_port, case)
        finally:
            run([self.binary, "undeploy", name, "--wait"], self.env)

    def crash_and_time(self, name: str, host_port: int, case: Case) -> str:
        before = self.replica(name)
        if not before.get("ready") or "pid" not in before or "port" not in before:
            raise BenchError(f"deployment {name} is not ready after `deploy --wait`: {before}")
        old_pid = before["pid"]

        recovery = Recovery()
        start = time.perf_counter()
        deadline = start + TIMEOUT
        # A daemon thread, so that a failed run does not wait for its deadline.
        watcher = threading.Thread(
            target=watch_recovery, args=(old_pid, host_port, deadline, recovery), daemon=True
        )
        crash(before["port"])
        watcher.start()

        started, ready, after = self.poll_until_ready(name, old_pid, deadline)
        watcher.join()
        if recovery.error:
            raise BenchError(f"shipdeck deployment {name}: {recovery.error}")

        self.check_restarted(name, after)
        moments = {
            "exited": recovery.exited,
            "started": started,
            "ready": ready,
            "endpoint": recovery.endpoint,
        }
        for column, moment in moments.items():
            case.add(column, ms(moment - start))
        parts = [f"{column} {ms(moment - start):.0f} ms" for column, moment in moments.items()]
        return ", ".join(parts)

    def poll_until_ready(self, name: str, old_pid: int, deadline: float):
        """Poll `shipdeck get` until a new pid is ready.

        Return when the pid appeared, when it got ready, and its `replicaDetails[0]`.
        """
        started = None
        while True:
            replica = self.replica(name)
            now = time.perf_counter()
            new_pid = replica.get("pid") not in (None, old_pid)
            if new_pid and started is None:
                started = now
            if new_pid and replica.get("ready"):
                return started, now, replica
            if now > deadline:
                raise BenchError(
                    f"deployment {name} showed no ready replica with a new pid within "
                    f"{TIMEOUT:.0f} s of the crash; last replicaDetails[0]: {replica}"
                )
            time.sleep(POLL_INTERVAL)

    @staticmethod
    def check_restarted(name: str, replica: dict) -> None:
        if replica.get("restarts") != 1:
            raise BenchError(
                f"deployment {name} reports {replica.get('restarts')} restarts after one "
                f"crash, expected 1: {replica}"
            )
        if process_exited(replica["pid"]):
            raise BenchError(
                f"deployment {name} reports pid {replica['pid']}, which is not running"
            )


# ---------------------------------------------------------------------------
# PM2


class Pm2:
    def __init__(self, binary: Path, sample: Path, home: Path, token: str) -> None:
        self.binary = str(binary)
        self.sample = str(sample)
        self.env = dict(os.environ, PM2_HOME=str(home), **{MARKER: token})

    def start_daemon(self) -> None:
        # Any pm2 command starts the daemon when none runs for this PM2_HOME.
        run([self.binary, "ping"], self.env)

    def kill_daemon(self) -> None:
        subprocess.run([self.binary, "kill"], env=self.env, capture_output=True, timeout=TIMEOUT)

    def pids(self, name: str) -> list[int]:
        """Pids of the app's processes that PM2 reports online."""
        processes = json.loads(run([self.binary, "jlist"], self.env))
        return [
            process["pid"]
            for process in processes
            if process["name"] == name and process["pm2_env"]["status"] == "online"
        ]

    def measure(self, name: str, case: Case) -> str:
        """Start the app, crash it once, time until its port returns 200 and delete it."""
        port = free_port()
        env = dict(self.env, PORT=str(port))
        argv = [self.binary, "start", self.sample, "--name", name, "--interpreter", "none"]
        run(argv + ["--", "serve", "--log-rate", "0"], env)
        try:
            return self.crash_and_time(name, port, case)
        finally:
            run([self.binary, "delete", name], self.env)

    def crash_and_time(self, name: str, port: int, case: Case) -> str:
        wait_for_200(port, time.perf_counter() + TIMEOUT)
        old_pids = self.pids(name)
        if len(old_pids) != 1:
            raise BenchError(f"PM2 app {name} has {len(old_pids)} processes online, expected 1")

        recovery = Recovery()
        start = time.perf_counter()
        crash(port)
        watch_recovery(old_pids[0], port, start + TIMEOUT, recovery)
        if recovery.error:
            raise BenchError(f"PM2 app {name}: {recovery.error}")

        new_pids = self.pids(name)
        if len(new_pids) != 1 or new_pids == old_pids:
            raise BenchError(
                f"PM2 app {name} reports pids {new_pids} after the crash of pid {old_pids[0]}"
            )
        case.add("exited", ms(recovery.exited - start))
        case.add("endpoint", ms(recovery.endpoint - start))
        return (
            f"exited {ms(recovery.exited - start):.0f} ms, "
            f"endpoint (its own port) {ms(recovery.endpoint - start):.0f} ms"
        )


# ---------------------------------------------------------------------------
# Report


COLUMNS = [
    ("exited", "crash → old process exited"),
    ("started", "crash → new pid in `shipdeck get`"),
    ("ready", "crash → new pid `ready: true`"),
    ("endpoint", "crash → first 200 through the endpoint"),
]


def describe(samples: list[float] | None) -> str:
    if not samples:
        return "–"
    median = f"{statistics.median(samples):.0f}"
    if len(samples) == 1:
        return median
    return f"{median} ({min(samples):.0f}–{max(samples):.0f})"


def table(cases: list[Case]) -> str:
    titles = " | ".join(f"{title} (ms)" for _, title in COLUMNS)
    lines = [
        f"| Supervisor and restart policy | n | {titles} |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for case in cases:
        count = max((len(values) for values in case.samples.values()), default=0)
        cells = [describe(case.samples.get(key)) for key, _ in COLUMNS]
        lines.append(f"| {case.title} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_report(shipdeck: Shipdeck, pm2_binary: Path | None) -> list[str]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    commit = git(["rev-parse", "--short=12", "HEAD"]).strip()
    changed = subprocess.run(
        ["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--", "src", "Cargo.toml", "Cargo.lock"]
    ).returncode
    if changed:
        commit += " with uncommitted changes under src/ or in Cargo.*"
    lines = [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} CPUs (nproc), {mem_kib / 1024 / 1024:.1f} GiB memory, "
        f"Linux {platform.release()}",
        f"- shipdeck: commit {commit}, binary {shipdeck.binary}",
    ]
    if pm2_binary:
        package = pm2_binary.resolve().parent.parent / "package.json"
        version = json.loads(package.read_text()).get("version", "unknown")
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        lines.append(f"- PM2 {version}, Node.js {node}, measured in the same run as a peer")
    lines.append(f"- load average at start: {load_average()}")
    return lines


def git(arguments: list[str]) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *arguments], capture_output=True, text=True
    ).stdout


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bin-dir", type=Path, default=REPO / "target" / "release",
        help="directory with the release `shipdeck` and `shipdeck-sample` binaries "
        "(default: target/release)",
    )
    parser.add_argument(
        "--pm2", type=Path,
        help="the pm2 executable, such as DIR/node_modules/.bin/pm2; without it PM2 is skipped",
    )
    parser.add_argument(
        "--reps", type=int, default=7, help="crashes per case, each on a fresh deployment"
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
    if args.pm2 and not os.access(args.pm2, os.X_OK):
        raise BenchError(
            f"{args.pm2} is not an executable; install PM2 with "
            "`npm install --prefix DIR pm2` and pass DIR/node_modules/.bin/pm2"
        )
    if args.reps < 1:
        raise BenchError(f"--reps is {args.reps}; it must be 1 or more")


def collect(args: argparse.Namespace, shipdeck: Shipdeck, pm2: Pm2 | None) -> str:
    machine = machine_report(shipdeck, args.pm2)
    shipdeck.start_agent()
    if pm2:
        pm2.start_daemon()

    default = Case("shipdeck, default policy (`backoffInitial` 1s)")
    fast = Case("shipdeck, `backoffInitial: 10ms`")
    peer = Case("PM2 (peer, same run), default policy")
    for rep in range(args.reps):
        progress(f"repetition {rep + 1} of {args.reps}")
        progress(f"  shipdeck default: {shipdeck.measure(f'crash-default-{rep}', None, default)}")
        progress(f"  shipdeck 10ms:    {shipdeck.measure(f'crash-fast-{rep}', '10ms', fast)}")
        if pm2:
            progress(f"  PM2:              {pm2.measure(f'crash-pm2-{rep}', peer)}")

    cases = [default, fast] + ([peer] if pm2 else [])
    return "\n".join(
        machine
        + [
            f"- load average at end: {load_average()}",
            f"- one `shipdeck get -o json` took {describe(shipdeck.get_times)} ms "
            f"(median, min–max over {len(shipdeck.get_times)} calls), "
            f"polled every {ms(POLL_INTERVAL):.0f} ms",
            "",
            f"Times are medians in milliseconds with (min–max) over {args.reps} crashes, "
            "each the first crash of a fresh deployment. The two `shipdeck get` columns "
            "come up to one poll (10 ms plus one `get`) late, so the endpoint column "
            "can be earlier than both. For PM2, the endpoint is the app's own port.",
            "",
            table(cases),
        ]
    )


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


def clean_up(shipdeck: Shipdeck, pm2: Pm2 | None, token: str) -> int:
    """Stop both daemons, then kill any process of this run still alive."""
    shipdeck.stop_agent()
    if pm2:
        pm2.kill_daemon()
    time.sleep(1)

    left = [pid for pid in marked_processes(token) if pid != os.getpid()]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if left:
        progress(f"killed {len(left)} processes left after stopping the daemons: {left}")
        return 1
    return 0


def main() -> int:
    args = parse_args()
    try:
        check_inputs(args)
    except BenchError as error:
        print(f"crash_recovery: {error}", file=sys.stderr)
        return 2

    token = secrets.token_hex(4)
    scratch = Path(tempfile.mkdtemp(prefix="shipdeck-crash-bench-"))
    work = scratch / "manifests"
    work.mkdir()
    bin_dir = args.bin_dir.resolve()
    shipdeck = Shipdeck(bin_dir, scratch / "shipdeck-home", token, work)
    pm2 = None
    if args.pm2:
        pm2 = Pm2(args.pm2.resolve(), bin_dir / "shipdeck-sample", scratch / "pm2-home", token)

    status = 0
    try:
        report = collect(args, shipdeck, pm2)
        print(report)
        if args.output:
            args.output.write_text(report + "\n")
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"crash_recovery: {error}", file=sys.stderr)
        status = 1
    finally:
        status = max(status, clean_up(shipdeck, pm2, token))
        shutil.rmtree(scratch, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
