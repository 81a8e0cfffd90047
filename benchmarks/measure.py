"""Measuring a child process tree: wall time and RSS over time (shared by the benchmarks and
the memory test in tests/integration).

`ru_maxrss` is per process and a lifetime peak; the pipeline's memory is spread over a main
process and its workers, so the tree's summed RSS is polled instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.2


def tree_rss(proc: Any) -> tuple[int, int]:
    """Sum of RSS over psutil process `proc` and its descendants, and how many there were."""
    import psutil

    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    total = count = 0
    for member in members:
        try:
            total += member.memory_info().rss
            count += 1
        except psutil.Error:  # exited between listing and reading
            continue
    return total, count


@dataclass
class Trace:
    """One measured child: wall seconds, exit code, and (unix time, tree RSS bytes) samples."""

    seconds: float
    returncode: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    peak_processes: int = 0

    @property
    def peak_rss(self) -> int:
        """Largest tree RSS seen, in bytes."""
        return max((rss for _, rss in self.samples), default=0)

    def peak_between(self, start: float, end: float) -> int:
        """Largest tree RSS sampled in [start, end] (unix seconds)."""
        inside = [rss for stamp, rss in self.samples if start <= stamp <= end]
        return max(inside, default=0)


def run_traced(command: list[str], env: dict[str, str], cwd: Path, log: Path,
               timeout: float | None = None) -> Trace:
    """Run `command`, output to `log`, polling the tree's RSS until it exits (or times out)."""
    import psutil

    with log.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        trace = Trace(seconds=0.0, returncode=0)
        while child.poll() is None:
            rss, count = tree_rss(proc)
            trace.samples.append((time.time(), rss))
            trace.peak_processes = max(trace.peak_processes, count)
            if timeout is not None and time.perf_counter() - started > timeout:
                for member in [*proc.children(recursive=True), proc]:
                    try:
                        member.kill()
                    except psutil.Error:
                        pass
                child.wait()
                break
            time.sleep(POLL_SECONDS)
        trace.seconds = time.perf_counter() - started
        trace.returncode = child.returncode
    return trace


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_prefect_server(home: Path, log: Path) -> tuple[subprocess.Popen, str, float]:
    """A real `prefect server start` on loopback, as a deployment has; returns its API URL."""
    import urllib.request

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    started = time.monotonic()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    while time.monotonic() - started < 300:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited early; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return server, url, time.monotonic() - started
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"prefect server did not answer within 300 s; see {log}")
