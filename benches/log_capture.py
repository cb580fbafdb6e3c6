#!/usr/bin/env python3
"""Measure log capture of one replica writing 1,000,000 lines, beside PM2 and `cat`.

One program, `shipdeck-sample --log-rate 0 --emit-lines 1000000`, writes
1,000,000 numbered lines of 100 bytes to stdout as fast as the pipe takes
them and then keeps serving HTTP. The script times how long each capturer
takes until every line is stored:

- shipdeck: from `shipdeck deploy -f M` until the API returns the last line
  for a search, polled every 100 ms. Then it pages through every stored
  entry to count lost and cut lines, and times three queries.
- PM2: from `pm2 start --interpreter none` until its out log file contains
  every line (or stops growing for 3 s), once plain and once with `--time`.
- `cat`: the program piped into `cat > FILE`, the floor.

Each tool runs from scratch in a temporary directory in every repetition.
The report is a Markdown table of medians on standard output, and the
progress goes to standard error. Rerun it as BENCHMARKS.md shows. It reuses
the process and PM2 helpers of `pm2_compare.py` in the same directory.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Import the sibling script without leaving a __pycache__ folder in the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import pm2_compare as common  # noqa: E402  (the benches folder is not a package)
from pm2_compare import BenchError, cpu_seconds, progress, rss_kib  # noqa: E402

LINES = 1_000_000
LINE_BYTES = 100
HEAD_BYTES = len("emit 000000001 ")

# Interval between two polls of the shipdeck API for the last line, in seconds.
API_POLL = 0.100

# Interval between two reads of a growing log file, in seconds.
FILE_POLL = 0.010

# A log file that has not grown for this long is taken as complete.
STALL_SECONDS = 3.0

# How long one burst may take before the run fails, in seconds.
BURST_TIMEOUT = 300.0

# Name of the agent's thread that stores captured lines (`comm` in /proc).
WRITER_THREAD = "shipdeck-logs"

# PM2's `--time` puts the time before each line, as `2026-12-04T23:25:33: `.
PM2_TIME_PREFIX = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?: ")


# Whether the lines carry varied hex digits (`--varied`) rather than `x`.
VARIED = False

MASK64 = (1 << 64) - 1


def varied_filler(seed: int, length: int) -> bytes:
    """Return the hex digits that `shipdeck-sample --emit-varied` puts in line `seed`."""
    state = seed
    digits = []
    while len(digits) * 16 < length:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        digits.append(f"{z:016x}")
    return "".join(digits)[:length].encode()


def expected_line(number: int) -> bytes:
    """Return the exact text of line `number` as the sample workload writes it."""
    head = f"emit {number:09d} ".encode()
    rest = LINE_BYTES - HEAD_BYTES
    return head + (varied_filler(number, rest) if VARIED else b"x" * rest)


# ---------------------------------------------------------------------------
# Completeness


# Bytes of a written line. A captured line made of these alone, but not a
# whole written line, is a fragment of a cut line. The program's own log
# lines, such as `INFO listening on ...`, contain other letters.
FRAGMENT_BYTES = frozenset(b"emit 0123456789abcdefx")


@dataclass
class Tally:
    """Differences between a captured copy of the 1,000,000 lines and the lines written."""

    seen: bytearray = field(default_factory=lambda: bytearray(LINES + 1))
    fragments: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    last_number: int = 0

    def add(self, message: bytes) -> None:
        """Count one captured line, without any timestamp that the capturer put before it."""
        number = parse_number(message[5:14]) if message.startswith(b"emit ") else None
        if number is None or message != expected_line(number):
            if message and FRAGMENT_BYTES.issuperset(message):
                self.fragments += 1
            return

        if self.seen[number]:
            self.duplicated += 1
        self.seen[number] = 1
        if number <= self.last_number:
            self.out_of_order += 1
        self.last_number = number

    @property
    def missing(self) -> int:
        """Written lines of which no whole copy was captured: lost or cut."""
        return LINES - sum(self.seen[1:])


def parse_number(digits: bytes) -> int | None:
    if len(digits) != 9 or not digits.isdigit():
        return None
    number = int(digits)
    return number if 1 <= number <= LINES else None


def tally_file(path: Path, timestamped: bool) -> Tally:
    """Check every line of a log file written by PM2 or `cat`."""
    tally = Tally()
    with path.open("rb") as file:
        for line in file:
            line = line.rstrip(b"\n")
            if timestamped:
                prefix = PM2_TIME_PREFIX.match(line)
                line = line[prefix.end() :] if prefix else line
            tally.add(line)
    return tally


class FileWatch:
    """Follows a growing log file and counts the `emit ` lines written so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.emitted = 0
        self.carry = b""
        self.last_growth = time.perf_counter()

    def poll(self) -> None:
        try:
            with self.path.open("rb") as file:
                file.seek(self.offset)
                chunk = file.read()
        except FileNotFoundError:
            return
        if not chunk:
            return

        self.offset += len(chunk)
        self.last_growth = time.perf_counter()
        # Count complete lines only, so that a line split across two reads
        # is counted once.
        data = self.carry + chunk
        end = data.rfind(b"\n") + 1
        self.emitted += data[:end].count(b"emit ")
        self.carry = data[end:]

    def wait_for_all(self, start: float) -> float:
        """Poll until every line arrived or the file stalled, then return the seconds."""
        while True:
            self.poll()
            now = time.perf_counter()
            if self.emitted >= LINES:
                return self.last_growth - start
            if now - self.last_growth > STALL_SECONDS and self.offset > 0:
                return self.last_growth - start
            if now - start > BURST_TIMEOUT:
                raise BenchError(
                    f"{self.path} contains {self.emitted} of {LINES} lines after "
                    f"{BURST_TIMEOUT:.0f} s; see that file and the program's stderr"
                )
            time.sleep(FILE_POLL)


# ---------------------------------------------------------------------------
# The shipdeck API over its Unix socket


class UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 to the agent's Unix socket."""

    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(socket_path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def api_get(socket_path: Path, path: str) -> tuple[float, object]:
    """Send one GET on a new connection.

    Return the seconds until the body was read, and the decoded JSON.
    """
    connection = UnixConnection(socket_path, timeout=60)
    try:
        start = time.perf_counter()
        connection.request("GET", path)
        reply = connection.getresponse()
        body = reply.read()
        elapsed = time.perf_counter() - start
    except OSError as error:
        raise BenchError(
            f"GET {path} on {socket_path} failed: {error}; see the agent log"
        ) from error
    finally:
        connection.close()

    if reply.status != 200:
        raise BenchError(
            f"GET {path} returned {reply.status}: {body[:300]!r}; see the agent log"
        )
    return elapsed, json.loads(body)


def logs_path(name: str, **params: str | int) -> str:
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return f"/v1/deployments/{name}/logs?{query}"


# ---------------------------------------------------------------------------
# One burst per tool


@dataclass
class Burst:
    """Measurements of one capture of the 1,000,000 lines."""

    seconds: float
    tally: Tally
    cpu: float | None = None
    rss_mib: float | None = None
    rss_before_mib: float | None = None
    command_seconds: float | None = None
    # Further shipdeck rows, by row key, in the unit of their row.
    extra: dict[str, float] = field(default_factory=dict)


def shipdeck_burst(args, work: Path, token: str, poll: str) -> Burst:
    """Deploy the emitter in a fresh agent and wait until its last line is queryable.

    `poll` is "search" (a search for the last line every 100 ms) or "tail"
    (the newest entry every 100 ms, a request that reads no stored block),
    which shows how much the polling searches cost the capture.
    """
    home = work / "home"
    shipdeck = common.Shipdeck(args.bin_dir, home, token, work)
    socket_path = home / "run" / "agent.sock"
    shipdeck.start_daemon()
    try:
        time.sleep(1)  # let the agent finish starting before its CPU is read
        manifest = work / "emit.yaml"
        manifest.write_text(
            "name: emit\nenvironment: bench\nreplicas: 1\n"
            f'run:\n  command: ["{args.bin_dir / "shipdeck-sample"}", "--log-rate", "0",'
            f' "--emit-lines", "{LINES}", "--emit-bytes", "{LINE_BYTES}"'
            + (', "--emit-varied"' if VARIED else "") + "]\n"
            "ports:\n  - { containerPort: 8080 }\n"
            f'env:\n  {common.MARKER}: "{token}"\n'
        )

        rss_before = rss_kib(shipdeck.pid) / 1024
        cpu_before = cpu_seconds(shipdeck.pid)
        writer_before = thread_cpu_seconds(shipdeck.pid, WRITER_THREAD)
        start = time.perf_counter()
        deploy = [shipdeck.binary, "deploy", "-f", str(manifest)]
        command_seconds, _ = common.run(deploy, shipdeck.env)
        wait_for_last_line(socket_path, start, poll)
        seconds = time.perf_counter() - start
        burst = Burst(seconds, Tally(), cpu=cpu_seconds(shipdeck.pid) - cpu_before)
        burst.command_seconds = command_seconds
        burst.rss_before_mib = rss_before
        burst.rss_mib = rss_kib(shipdeck.pid) / 1024
        burst.extra["writer_cpu"] = thread_cpu_seconds(shipdeck.pid, WRITER_THREAD) - writer_before

        if poll == "search":
            _, stats = api_get(socket_path, "/v1/deployments/emit/log-stats")
            burst.extra["stored"] = stats["bytes"] / 2**20
            burst.tally = shipdeck_tally(socket_path)
            burst.extra.update(time_queries(socket_path, args.queries))
            burst.extra["rss_after"] = rss_kib(shipdeck.pid) / 1024
        return burst
    finally:
        shipdeck.stop_daemon()


def wait_for_last_line(socket_path: Path, start: float, poll: str) -> None:
    last = expected_line(LINES).decode()
    if poll == "search":
        request = logs_path("emit", search=f"emit {LINES:09d}", tail=1)
    else:
        request = logs_path("emit", tail=1)
    next_poll = start
    while True:
        next_poll += API_POLL
        time.sleep(max(0.0, next_poll - time.perf_counter()))
        if time.perf_counter() - start > BURST_TIMEOUT:
            raise BenchError(
                f"shipdeck did not store line {LINES} within {BURST_TIMEOUT:.0f} s; "
                "see `shipdeck logs emit` and the agent log"
            )
        try:
            _, entries = api_get(socket_path, request)
        except BenchError:
            continue  # the deployment may not exist yet right after `deploy`
        if entries and entries[-1]["message"] == last:
            return


def shipdeck_tally(socket_path: Path) -> Tally:
    """Page through every stored `emit` entry, oldest first."""
    tally = Tally()
    page = 100_000
    offset = 0
    while True:
        path = logs_path("emit", search="emit 0", limit=page, offset=offset)
        _, entries = api_get(socket_path, path)
        for entry in entries:
            tally.add(entry["message"].encode())
        if len(entries) < page:
            return tally
        offset += page


def time_queries(socket_path: Path, count: int) -> dict[str, float]:
    """Time three queries over the stored lines and return the median milliseconds of each."""
    paths = {
        "no_match": logs_path("emit", search="no line contains this", tail=100),
        "one_match": logs_path("emit", search=f"emit {LINES // 2:09d}", tail=100),
        "tail": logs_path("emit", tail=100),
    }
    expected_counts = {"no_match": 0, "one_match": 1, "tail": 100}
    medians = {}
    for key, path in paths.items():
        samples = []
        for _ in range(count):
            seconds, entries = api_get(socket_path, path)
            if len(entries) != expected_counts[key]:
                raise BenchError(
                    f"GET {path} returned {len(entries)} entries instead of "
                    f"{expected_counts[key]}; check the stored lines with `shipdeck logs emit`"
                )
            samples.append(seconds)
        medians[key] = statistics.median(samples) * 1000
    return medians


def pm2_burst(args, work: Path, token: str, timestamped: bool) -> Burst:
    """Start the emitter under a fresh PM2 daemon and wait until its out log contains every line."""
    home = work / "pm2"
    pm2 = common.Pm2(args.pm2, home, token, work)
    pm2.start_daemon()
    try:
        time.sleep(1)
        port = free_port()
        argv = [pm2.binary, "start", str(args.bin_dir / "shipdeck-sample"), "--name", "emit"]
        argv += ["--interpreter", "none"] + (["--time"] if timestamped else [])
        argv += ["--", "--log-rate", "0", "--emit-lines", str(LINES), "--port", str(port)]
        argv += ["--emit-varied"] if VARIED else []
        watch = FileWatch(home / "logs" / "emit-out.log")

        rss_before = rss_kib(pm2.pid) / 1024
        cpu_before = cpu_seconds(pm2.pid)
        start = time.perf_counter()
        command_seconds, _ = common.run(argv, pm2.env)
        seconds = watch.wait_for_all(start)
        burst = Burst(seconds, Tally(), cpu=cpu_seconds(pm2.pid) - cpu_before)
        burst.command_seconds = command_seconds
        burst.rss_before_mib = rss_before
        burst.rss_mib = rss_kib(pm2.pid) / 1024
        burst.tally = tally_file(watch.path, timestamped)
        return burst
    finally:
        pm2.stop_daemon()


def cat_burst(args, work: Path, token: str) -> Burst:
    """Pipe the emitter into `cat > FILE`, the least any capturer can do."""
    path = work / "cat.log"
    env = dict(os.environ, **{common.MARKER: token})
    argv = [str(args.bin_dir / "shipdeck-sample"), "--log-rate", "0"]
    argv += ["--emit-lines", str(LINES), "--port", str(free_port())]
    argv += ["--emit-varied"] if VARIED else []
    watch = FileWatch(path)

    with path.open("wb") as out:
        start = time.perf_counter()
        writer = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        reader = subprocess.Popen(["cat"], env=env, stdin=writer.stdout, stdout=out)
        if writer.stdout is not None:
            writer.stdout.close()  # so that `cat` reads end of file once the writer exits
        try:
            seconds = watch.wait_for_all(start)
            cpu = cpu_seconds(reader.pid)
        finally:
            writer.kill()
            writer.wait()
            reader.wait(timeout=10)

    burst = Burst(seconds, tally_file(path, False), cpu=cpu)
    path.unlink()
    return burst


def thread_cpu_seconds(pid: int, name: str) -> float:
    """Add up the CPU time (utime + stime) of the threads of `pid` named `name`."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "comm").read_text().strip() != name:
                continue
            # Only /proc/PID/task/TID/stat counts one thread. /proc/TID/stat
            # counts the whole process.
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / common.CLOCK_TICKS
    return total


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


# ---------------------------------------------------------------------------
# Report


COLUMNS = ("shipdeck", "pm2", "pm2_time", "cat")


@dataclass
class Row:
    """One measurement across the capturers, with shipdeck's target if it has one."""

    title: str
    digits: int
    values: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in COLUMNS})
    target: str = ""
    # Returns whether shipdeck's median meets the target, given the medians
    # of every column.
    check: Callable[[dict[str, float]], bool] | None = None
    # Whether the shipdeck / PM2 `--time` ratio means anything for this row.
    ratio: bool = True


def median_text(samples: list[float], digits: int) -> str:
    if not samples:
        return "–"
    median = f"{statistics.median(samples):.{digits}f}"
    if len(samples) == 1 or min(samples) == max(samples):
        return median
    return f"{median} ({min(samples):.{digits}f}–{max(samples):.{digits}f})"


def render(rows: list[Row]) -> str:
    lines = [
        "| Measurement | shipdeck | PM2 | PM2 `--time` | `cat` "
        "| shipdeck / PM2 `--time` | Target | Result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        medians = {c: statistics.median(v) for c, v in row.values.items() if v}
        ratio = "–"
        if row.ratio and "shipdeck" in medians and medians.get("pm2_time"):
            ratio = f"{medians['shipdeck'] / medians['pm2_time']:.2f}"
        result = ""
        if row.check is not None and "shipdeck" in medians:
            result = "met" if row.check(medians) else "**not met**"
        cells = " | ".join(median_text(row.values[c], row.digits) for c in COLUMNS)
        lines.append(f"| {row.title} | {cells} | {ratio} | {row.target or '–'} | {result} |")
    return "\n".join(lines)


def build_rows() -> dict[str, Row]:
    return {
        "seconds": Row("all 1,000,000 lines stored (s)", 2),
        "rate": Row(
            "capture rate (M lines/s)", 3,
            target="≥ 2 × PM2 `--time`",
            check=lambda m: m["shipdeck"] >= 2 * m["pm2_time"],
        ),
        "missing": Row(
            "lines without a whole copy (lost or cut)", 0,
            target="0", check=lambda m: m["shipdeck"] == 0, ratio=False,
        ),
        "fragments": Row(
            "fragments of cut lines stored", 0,
            target="0", check=lambda m: m["shipdeck"] == 0, ratio=False,
        ),
        "duplicated": Row("lines stored twice", 0, ratio=False),
        "out_of_order": Row("lines out of order", 0, ratio=False),
        "cpu": Row(
            "capturer CPU for 1M lines (s)", 2,
            target="≤ PM2 `--time`",
            check=lambda m: m["shipdeck"] <= m["pm2_time"],
        ),
        "writer_cpu": Row(f"of the agent's CPU: its `{WRITER_THREAD}` writer thread (s)", 2),
        "rss_before": Row("daemon RSS before the burst (MiB)", 1),
        "rss": Row(
            "daemon RSS after the burst (MiB)", 1,
            target="≤ ¼ of PM2 `--time`",
            check=lambda m: m["shipdeck"] <= m["pm2_time"] / 4,
        ),
        "stored": Row("stored log bytes after the burst, from log-stats (MiB)", 1),
        "command": Row("`shipdeck deploy` / `pm2 start` returned (s)", 2),
        "rate_after_command": Row(
            "capture rate counted from the return of `deploy` / `pm2 start` (M lines/s)", 3
        ),
        "tail_seconds": Row("diagnostic: last line queryable, polling `tail=1` (s)", 2),
        "tail_rate": Row("diagnostic: capture rate, polling `tail=1` (M lines/s)", 3),
        "tail_cpu": Row("diagnostic: agent CPU, polling `tail=1` (s)", 2),
        "tail_writer_cpu": Row(
            f"diagnostic: `{WRITER_THREAD}` thread CPU, polling `tail=1` (s)", 2
        ),
        "no_match": Row(
            "search matching nothing, `tail=100`, full scan (ms)", 1,
            target="< 300 ms",
            check=lambda m: m["shipdeck"] < 300,
        ),
        "one_match": Row("search matching 1 line, `tail=100` (ms)", 1),
        "tail": Row(
            "`tail=100`, no filter (ms)", 1,
            target="< 10 ms", check=lambda m: m["shipdeck"] < 10,
        ),
        "rss_after": Row("agent RSS after the completeness check and the queries (MiB)", 1),
    }


def record(rows: dict[str, Row], column: str, burst: Burst) -> None:
    values = {
        "seconds": burst.seconds,
        "rate": LINES / burst.seconds / 1e6,
        "missing": burst.tally.missing,
        "fragments": burst.tally.fragments,
        "duplicated": burst.tally.duplicated,
        "out_of_order": burst.tally.out_of_order,
        "cpu": burst.cpu,
        "rss_before": burst.rss_before_mib,
        "rss": burst.rss_mib,
        "command": burst.command_seconds,
    }
    if burst.command_seconds is not None:
        values["rate_after_command"] = LINES / (burst.seconds - burst.command_seconds) / 1e6
    for key, value in values.items():
        if value is not None:
            rows[key].values[column].append(value)
    for key, value in burst.extra.items():
        rows[key].values[column].append(value)
    memory = f", RSS {burst.rss_mib:.1f} MiB" if burst.rss_mib is not None else ""
    progress(
        f"{column}: {burst.seconds:.2f} s, missing {burst.tally.missing}, "
        f"fragments {burst.tally.fragments}, CPU {burst.cpu or 0:.2f} s{memory}"
    )


def record_tail_poll(rows: dict[str, Row], burst: Burst) -> None:
    rows["tail_seconds"].values["shipdeck"].append(burst.seconds)
    rows["tail_rate"].values["shipdeck"].append(LINES / burst.seconds / 1e6)
    rows["tail_cpu"].values["shipdeck"].append(burst.cpu or 0.0)
    rows["tail_writer_cpu"].values["shipdeck"].append(burst.extra["writer_cpu"])
    progress(f"shipdeck polling tail=1: {burst.seconds:.2f} s, CPU {burst.cpu or 0:.2f} s")


# ---------------------------------------------------------------------------
# The run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bin-dir",
        type=Path,
        default=Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "release",
        help="directory with the release `shipdeck` and `shipdeck-sample` binaries "
        "(default: $CARGO_TARGET_DIR/release, else target/release)",
    )
    parser.add_argument(
        "--pm2", type=Path, default=Path("/tmp/shipdeck-bench-pm2/node_modules/.bin/pm2"),
        help="the pm2 executable, as installed by `npm install --prefix DIR pm2`",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions of every burst")
    parser.add_argument("--queries", type=int, default=9, help="requests timed per query and run")
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    parser.add_argument(
        "--varied", action="store_true",
        help="lines of hex digits that differ in every line (barely compressible) instead of `x`",
    )
    args = parser.parse_args()
    global VARIED
    VARIED = args.varied
    args.bin_dir = args.bin_dir.resolve()
    args.pm2 = args.pm2.resolve()
    return args


def collect(args, scratch: Path, token: str) -> str:
    shipdeck = common.Shipdeck(args.bin_dir, scratch / "unused", token, scratch)
    header = common.machine_report(shipdeck, args.pm2)
    filler = "hex digits that differ in every line (--varied)" if VARIED else "`x` repeated"
    header += f"\n- payload: 1,000,000 lines of 100 bytes, the line number then {filler}"
    rows = build_rows()

    bursts = [
        ("shipdeck", lambda work: shipdeck_burst(args, work, token, "search")),
        ("pm2", lambda work: pm2_burst(args, work, token, False)),
        ("pm2_time", lambda work: pm2_burst(args, work, token, True)),
        ("cat", lambda work: cat_burst(args, work, token)),
        ("tail", lambda work: shipdeck_burst(args, work, token, "tail")),
    ]
    loads = []
    for run_index in range(args.runs):
        loads.append(common.load_average())
        progress(f"run {run_index + 1} of {args.runs}, load average {loads[-1]}")
        # Alternate the order, so that a slow drift of the load hits every tool alike.
        order = bursts if run_index % 2 == 0 else list(reversed(bursts))
        for column, measure in order:
            # Every burst starts from an empty home, so no stored line or log
            # file of an earlier burst is counted.
            work = Path(tempfile.mkdtemp(prefix=f"{column}-", dir=scratch))
            try:
                burst = measure(work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            if column == "tail":
                record_tail_poll(rows, burst)
            else:
                record(rows, column, burst)

    return "\n".join(
        [
            header,
            f"- load average at the start of each run: {'; '.join(loads)}",
            f"- load average at end: {common.load_average()}",
            f"- runs: {args.runs}; queries timed {args.queries} times per run",
            "",
            "Medians with (min–max) over the runs. Query times are the median of each run's",
            "requests, measured around one HTTP request on a new connection to the agent's",
            "Unix socket, so they include HTTP and the JSON encoding of the answer.",
            "",
            render(list(rows.values())),
        ]
    )


def check_inputs(args: argparse.Namespace) -> None:
    for binary in (args.bin_dir / "shipdeck", args.bin_dir / "shipdeck-sample", args.pm2):
        if not os.access(binary, os.X_OK):
            raise BenchError(
                f"{binary} is not an executable; build with `cargo build --release`, "
                "install PM2 with `npm install --prefix DIR pm2`, and pass --bin-dir and --pm2"
            )


def main() -> int:
    args = parse_args()
    try:
        check_inputs(args)
    except BenchError as error:
        print(f"log_capture: {error}", file=sys.stderr)
        return 2

    token = secrets.token_hex(4)
    scratch = Path(tempfile.mkdtemp(prefix="shipdeck-log-bench-"))
    status = 0
    try:
        report = collect(args, scratch, token)
        print(report)
        if args.output:
            args.output.write_text(report + "\n")
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"log_capture: {error}", file=sys.stderr)
        status = 1
    finally:
        # Every daemon is stopped after its burst, so this only catches leftovers.
        status = max(status, common.clean_up([], token))
        shutil.rmtree(scratch, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
