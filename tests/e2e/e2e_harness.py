"""End-to-end harness: `python -m streamprint serve` subprocesses on 127.0.0.1 and their RSS."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

_LISTEN_RE = re.compile(r"serving on \S+:(\d+)")
_METRICS_RE = re.compile(r"metrics on :(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `streamprint serve` process; the port and metrics port are read from its log."""

    def __init__(self, *args: str, port: int = 0, metrics: bool = True) -> None:
        env = {**os.environ, "STREAMPRINT_LOG_LEVEL": "info"}
        extra = ["--metrics-port", "0"] if metrics else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamprint", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--engine-threads", "2", "--backend", "numpy", *extra, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )  # fmt: skip
        self.log: list[str] = []
        self.port = 0
        self.metrics_port = 0
        self._wait_started()
        threading.Thread(target=self._read_rest, daemon=True).start()

    def _wait_started(self) -> None:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = _LISTEN_RE.search(line)
            if match:
                self.port = int(match.group(1))
                metrics = _METRICS_RE.search(line)
                self.metrics_port = int(metrics.group(1)) if metrics else 0
                return
        self.proc.kill()
        raise AssertionError("server did not start:\n" + "".join(self.log))

    def _read_rest(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def children(self) -> list[int]:
        """PIDs of the server's child processes (its workers with ``--workers N``)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def workers(self) -> list[int]:
        """PIDs of the server's worker processes (``--workers N``; not its helpers)."""
        out = []
        for pid in self.children():
            cmdline = Path(f"/proc/{pid}/cmdline")
            if cmdline.exists() and b"streamprint.workers.process" in cmdline.read_bytes():
                out.append(pid)
        return out

    def rss_mb(self) -> float:
        """Resident MB of the server, its worker processes included."""
        total = 0.0
        for pid in (self.proc.pid, *self.children()):
            status = Path(f"/proc/{pid}/status")
            lines = status.read_text().splitlines() if status.exists() else []
            total += sum(int(ln.split()[1]) / 1024.0 for ln in lines if ln.startswith("VmRSS:"))
        if total == 0.0:
            raise AssertionError("no VmRSS")
        return total

    def metric(self, name: str) -> float:
        """The value of the unlabelled series ``name`` in the server's /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        (line,) = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
        return float(line.split()[1])

    def gauge(self) -> float:
        return self.metric("streamprint_active_streams")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def tone_wav(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    x = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
