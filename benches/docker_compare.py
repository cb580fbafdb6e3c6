#!/usr/bin/env python3
"""Measure shipdeck's Docker backend beside the docker CLI, in the same run.

Deploy: the wall time of `shipdeck deploy --wait` of 1 and of 10 replicas,
from the command's start until it returns with every replica ready, which
is when its HTTP health check passed. Beside it, `docker run -d` starts the
same containers one after another: same image, command, environment,
limits and a port published on 127.0.0.1. That time runs until each
container's /healthz has returned 200, polled every 5 ms. Each repetition
alternates which goes first, and containers are removed outside the
timing.

Stats: one deployment of 20 replicas with `monitoring: { interval: 1s }`.
Over the same fixed window the script measures the agent's CPU (utime +
stime from /proc/PID/stat) while it collects, then redeploys with
`monitoring: { enabled: false }` (no stats streams) and measures the agent
again, so the collection cost is the difference. Beside them it runs
`docker stats --no-stream` against the same 20 containers in a loop for the
same window and counts the CPU of those CLI processes (RUSAGE_CHILDREN).
dockerd's CPU in each window is shown for context; it serves every client
of the engine, so it is noisy on a shared machine.

The image is the sample workload and the libraries it links, imported with
`docker import` (no registry), as tests/docker.rs builds it. The report is
a Markdown table of medians on standard output; progress goes to standard
error. Rerun it as BENCHMARKS.md shows.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Import the sibling script without leaving a __pycache__ folder in the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import pm2_compare as common  # noqa: E402  (the benches folder is not a package)
from pm2_compare import BenchError, cpu_seconds, healthz_ok, progress  # noqa: E402

# Resource limits of every container, in both tools.
CPU_LIMIT = "500m"
DOCKER_CPUS = "0.5"
MEMORY_LIMIT = "256Mi"
DOCKER_MEMORY = "256m"

STATS_REPLICAS = 20

# How long a deploy and its readiness may take before the run fails.
DEPLOY_TIMEOUT = 120.0


@dataclass
class Row:
    """One measurement with its samples, and its target if it has one."""

    title: str
    unit: str
    samples: list[float] = field(default_factory=list)
    target: str = "–"


def describe(samples: list[float], digits: int = 2) -> str:
    if not samples:
        return "–"
    text = f"{statistics.median(samples):.{digits}f}"
    if len(samples) > 1:
        text += f" ({min(samples):.{digits}f}–{max(samples):.{digits}f})"
    return text


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=DEPLOY_TIMEOUT
    )
    if check and done.returncode != 0:
        raise BenchError(f"`docker {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


def import_image(sample: Path, tag: str) -> None:
    """Import the sample workload, its shared libraries and /tmp as an image."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        add_file(archive, sample, "shipdeck-sample")
        listed = subprocess.run(["ldd", str(sample)], capture_output=True, text=True, check=True)
        for word in listed.stdout.split():
            if word.startswith("/"):
                add_file(archive, Path(word), word.lstrip("/"))
        tmp = tarfile.TarInfo("tmp")
        tmp.type = tarfile.DIRTYPE
        tmp.mode = 0o1777
        archive.addfile(tmp)
    done = subprocess.run(
        ["docker", "import", "--change",
         'CMD ["/shipdeck-sample", "serve", "--log-rate", "0"]', "-", tag],
        input=buffer.getvalue(), capture_output=True, check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"docker import failed: {done.stderr.decode().strip()}")


def add_file(archive: tarfile.TarFile, path: Path, inside: str) -> None:
    data = path.read_bytes()
    info = tarfile.TarInfo(inside)
    info.size = len(data)
    info.mode = 0o755
    archive.addfile(info, io.BytesIO(data))


class Agent:
    """A shipdeck agent on a fresh home."""

    def __init__(self, binary: Path, home: Path, work: Path) -> None:
        self.binary = str(binary)
        self.home = home
        self.work = work
        self.env = dict(os.environ, SHIPDECK_HOME=str(home))
        self.pid = 0

    def run(self, *args: str) -> tuple[float, str]:
        return common.run([self.binary, *args], self.env)

    def start(self) -> None:
        self.run("agent", "--detach")
        self.pid = common.read_pid(self.home / "run" / "agent.pid")

    def manifest(self, name: str, image: str, replicas: int, monitoring: str) -> Path:
        text = (
            f"name: {name}\nbackend: docker\nimage: {image}\nreplicas: {replicas}\n"
            "ports:\n  - { name: http, containerPort: 8080 }\n"
            f"resources:\n  limits: {{ cpu: {CPU_LIMIT}, memory: {MEMORY_LIMIT} }}\n"
            "healthCheck: { type: http, path: /healthz, port: 8080, periodSeconds: 1 }\n"
            f"monitoring: {monitoring}\n"
        )
        path = self.work / f"{name}.yaml"
        path.write_text(text)
        return path

    def deploy(self, name: str, image: str, replicas: int, monitoring: str = "{ enabled: false }") -> float:
        path = self.manifest(name, image, replicas, monitoring)
        elapsed, _ = self.run("deploy", "-f", str(path), "--wait")
        self.expect_ready(name, replicas)
        return elapsed

    def expect_ready(self, name: str, replicas: int) -> None:
        """Check outside the timing that every replica is ready and responds."""
        _, out = self.run("get", name, "-o", "json")
        deployment = json.loads(out)
        ready = deployment["replicas"]["ready"]
        if ready != replicas:
            raise BenchError(f"{name}: {ready} of {replicas} replicas ready after deploy --wait")
        for endpoint in deployment["endpoints"]:
            port = int(endpoint.rsplit(":", 1)[1])
            if not healthz_ok(port):
                raise BenchError(f"{name}: {endpoint}/healthz did not return 200")

    def containers(self, name: str) -> list[str]:
        _, out = self.run("get", name, "-o", "json")
        return [r["container"] for r in json.loads(out)["replicaDetails"] if r.get("container")]

    def undeploy(self, name: str) -> None:
        self.run("undeploy", name, "--wait")

    def stop(self) -> None:
        common.run([self.binary, "agent", "stop"], self.env, check=False)


def docker_run_ready(image: str, count: int, prefix: str) -> float:
    """Run `count` containers one after another and wait until each is healthy."""
    base = common.free_port_base(count)
    ports = [base + index for index in range(count)]
    start = time.perf_counter()
    for index, port in enumerate(ports):
        docker(
            "run", "-d", "--name", f"{prefix}-{index}", "--label", "shipdeck-bench=1",
            "-e", "PORT=8080", "-p", f"127.0.0.1:{port}:8080",
            "--memory", DOCKER_MEMORY, "--cpus", DOCKER_CPUS, image,
        )
    waiting = set(ports)
    while waiting:
        waiting = {port for port in waiting if not healthz_ok(port)}
        if waiting and time.perf_counter() - start > DEPLOY_TIMEOUT:
            raise BenchError(f"docker run containers on {sorted(waiting)} never became healthy")
        if waiting:
            time.sleep(0.005)
    elapsed = time.perf_counter() - start
    remove_containers([f"{prefix}-{index}" for index in range(count)])
    return elapsed


def remove_containers(names: list[str]) -> None:
    if names:
        docker("rm", "--force", *names, check=False)


def dockerd_pid() -> int | None:
    try:
        return int(Path("/var/run/docker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def cpu_percent(pid: int | None, window: float) -> tuple[float, float]:
    """CPU of `pid` over `window` seconds of sleep, in percent of one core,
    and dockerd's over the same window."""
    engine = dockerd_pid()
    before = cpu_seconds(pid) if pid else 0.0
    engine_before = cpu_seconds(engine) if engine else 0.0
    time.sleep(window)
    used = (cpu_seconds(pid) - before) if pid else 0.0
    engine_used = (cpu_seconds(engine) - engine_before) if engine else float("nan")
    return used / window * 100.0, engine_used / window * 100.0


def cli_stats_loop(containers: list[str], window: float) -> tuple[float, float, int]:
    """Run `docker stats --no-stream` on the containers until `window` has
    passed; returns the CLI's CPU and dockerd's in percent, and the runs."""
    engine = dockerd_pid()
    engine_before = cpu_seconds(engine) if engine else 0.0
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    runs = 0
    while time.perf_counter() - start < window:
        docker("stats", "--no-stream", *containers)
        runs += 1
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cli = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    engine_used = (cpu_seconds(engine) - engine_before) if engine else float("nan")
    return cli / elapsed * 100.0, engine_used / elapsed * 100.0, runs


def measure_deploys(agent: Agent, image: str, reps: int, rows: dict[str, Row]) -> None:
    for rep in range(reps):
        for replicas in (1, 10):
            order = ["shipdeck", "docker"] if (rep + replicas) % 2 == 0 else ["docker", "shipdeck"]
            for tool in order:
                if tool == "shipdeck":
                    name = f"bench{replicas}-{rep}"
                    rows[f"shipdeck{replicas}"].samples.append(agent.deploy(name, image, replicas))
                    agent.undeploy(name)
                else:
                    rows[f"docker{replicas}"].samples.append(
                        docker_run_ready(image, replicas, f"shipdeck-bench-run{replicas}-{rep}")
                    )
        progress(f"deploy repetition {rep + 1}/{reps} done")
    for replicas in (1, 10):
        ship = statistics.median(rows[f"shipdeck{replicas}"].samples)
        run = statistics.median(rows[f"docker{replicas}"].samples)
        rows[f"overhead{replicas}"].samples.append((ship / run - 1.0) * 100.0)


def measure_stats(agent: Agent, image: str, reps: int, window: float, rows: dict[str, Row]) -> None:
    for rep in range(reps):
        agent.deploy("stats", image, STATS_REPLICAS, "{ interval: 1s }")
        # The first samples of every stream arrive within a few seconds.
        time.sleep(5)
        agent_cpu, engine_cpu = cpu_percent(agent.pid, window)
        rows["agent_on"].samples.append(agent_cpu)
        rows["engine_agent"].samples.append(engine_cpu)

        agent.deploy("stats", image, STATS_REPLICAS, "{ enabled: false }")
        time.sleep(5)
        idle_cpu, _ = cpu_percent(agent.pid, window)
        rows["agent_off"].samples.append(idle_cpu)
        rows["agent_cost"].samples.append(agent_cpu - idle_cpu)

        cli_cpu, engine_cli, runs = cli_stats_loop(agent.containers("stats"), window)
        rows["cli"].samples.append(cli_cpu)
        rows["engine_cli"].samples.append(engine_cli)
        rows["cli_runs"].samples.append(runs / window)
        progress(f"stats repetition {rep + 1}/{reps}: agent {agent_cpu:.2f} %, "
                 f"without stats {idle_cpu:.2f} %, CLI loop {cli_cpu:.2f} %")
    agent.undeploy("stats")


def build_rows() -> dict[str, Row]:
    return {
        "shipdeck1": Row("`shipdeck deploy --wait`, 1 replica", "s"),
        "docker1": Row("`docker run -d` until healthy, 1 container", "s"),
        "overhead1": Row("deploy overhead over docker run, 1", "%", target="< 20"),
        "shipdeck10": Row("`shipdeck deploy --wait`, 10 replicas", "s"),
        "docker10": Row("`docker run -d` until healthy, 10 containers", "s"),
        "overhead10": Row("deploy overhead over docker run, 10", "%", target="< 20"),
        "agent_on": Row(f"agent CPU, {STATS_REPLICAS} containers, metrics every 1 s", "% of a core"),
        "agent_off": Row(f"agent CPU, {STATS_REPLICAS} containers, metrics off", "% of a core"),
        "agent_cost": Row("agent CPU for the stats (difference)", "% of a core",
                          target="< CLI loop"),
        "cli": Row(f"`docker stats --no-stream` loop, {STATS_REPLICAS} containers", "% of a core"),
        "cli_runs": Row("`docker stats --no-stream` runs per second", "1/s"),
        "engine_agent": Row("dockerd CPU while the agent collects", "% of a core"),
        "engine_cli": Row("dockerd CPU during the CLI loop", "% of a core"),
    }


def table(rows: dict[str, Row]) -> str:
    lines = ["| measurement | unit | median (min–max) | target |", "| --- | --- | --- | --- |"]
    for row in rows.values():
        lines.append(f"| {row.title} | {row.unit} | {describe(row.samples)} | {row.target} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, default=Path("target/release"),
                        help="directory with the shipdeck and shipdeck-sample binaries")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each deploy (default 5)")
    parser.add_argument("--stats-reps", type=int, default=3,
                        help="repetitions of the stats windows (default 3)")
    parser.add_argument("--cpu-seconds", type=float, default=60.0,
                        help="length of each CPU window in seconds (default 60)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    for tool in ("docker", "ldd"):
        if shutil.which(tool) is None:
            print(f"docker_compare: {tool} is required but not installed", file=sys.stderr)
            return 1
    binary = args.bin_dir / "shipdeck"
    sample = args.bin_dir / "shipdeck-sample"
    if not binary.is_file() or not sample.is_file():
        print(f"docker_compare: build first: cargo build --release (looked in {args.bin_dir})",
              file=sys.stderr)
        return 1
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        print("docker_compare: no Docker engine responds to `docker info`", file=sys.stderr)
        return 1

    image = f"shipdeck-bench-sample:{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="shipdeck-docker-bench-"))
    agent = Agent(binary, work / "home", work)
    rows = build_rows()
    try:
        import_image(sample, image)
        agent.start()
        # Warm up both paths (image layers, the agent's engine connection).
        agent.deploy("warmup", image, 1)
        agent.undeploy("warmup")
        docker_run_ready(image, 1, "shipdeck-bench-warmup")
        measure_deploys(agent, image, args.reps, rows)
        measure_stats(agent, image, args.stats_reps, args.cpu_seconds, rows)
    except BenchError as error:
        print(f"docker_compare: {error}", file=sys.stderr)
        return 1
    finally:
        agent.stop()
        leftovers = docker("ps", "--all", "--quiet", "--filter", "label=shipdeck-bench=1",
                           check=False).split()
        remove_containers(leftovers)
        leftovers = docker("ps", "--all", "--quiet", "--filter",
                           f"label=shipdeck.home={agent.home}", check=False).split()
        remove_containers(leftovers)
        docker("rmi", "--force", image, check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {common.load_average()}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
