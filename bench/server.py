"""A real ``zanzi serve`` on loopback over a SQLite file, for the server mode.

The server is started through a tiny launcher that asks Linux to SIGTERM it if the bench dies
(``PR_SET_PDEATHSIG``), and is ready once gRPC health checking answers SERVING.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

KEY = "bench-key"

LAUNCHER = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
except OSError:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, directory: Path, workers: int | None = None) -> None:
        self.db = directory / "server.db"
        self.addr = f"127.0.0.1:{free_port()}"
        self.log = directory / "server.log"
        self.args = [
            sys.executable,
            "-m",
            "zanzi",
            "serve",
            "--datastore",
            f"sqlite:///{self.db}",
            "--grpc-addr",
            self.addr,
            "--grpc-preshared-key",
            KEY,
            "--log-level",
            "warning",
        ]
        if workers is not None:
            self.args += ["--workers", str(workers)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(os.getpid()), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.addr) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types lack Check
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"zanzi serve exited with {self.proc.returncode}: {self.tail()}")
                try:
                    serving = health_pb2.HealthCheckResponse.SERVING
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == serving:
                        return self
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"zanzi serve was not SERVING after {timeout}s: {self.tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
