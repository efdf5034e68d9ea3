"""A real ``zanzi serve`` process on loopback for integration tests.

The process runs ``python -m zanzi serve`` on free ports with a temporary SQLite file (or the
datastore it is given), logs to a file, and is ready once gRPC health checking answers SERVING.
Several servers on one PostgreSQL datastore are the nodes of one deployment
(:func:`running_nodes`). It cannot outlive the tests: it
gets SIGTERM when the test process dies (Linux ``PR_SET_PDEATHSIG``, set by a launcher before
it execs the server; worker processes follow their supervisor), and :meth:`stop` kills it if it
has not stopped gracefully in time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from authzed.api.v1 import Client, InsecureClient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpcutil import bearer_token_credentials

KEY = "integration-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Started as `python -c LAUNCHER args...`: asks Linux for SIGTERM when the test process dies
# (PR_SET_PDEATHSIG survives exec), then becomes the server. Done in a fresh interpreter, not in
# a preexec_fn: forking a process with gRPC threads and running Python before exec can abort.
LAUNCHER = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
except OSError:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the test process is already gone
os.execv(sys.argv[2], sys.argv[2:])
"""


class ZanziServer:
    """One ``zanzi serve`` process."""

    def __init__(
        self,
        directory: Path,
        *,
        key: str | None = KEY,
        http: bool = False,
        metrics: bool = False,
        workers: int = 1,
        tls: tuple[Path, Path] | None = None,
        extra: tuple[str, ...] = (),
        datastore: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.key = key
        self.tls = tls
        self.db = directory / "zanzi.db"
        self.datastore = datastore or f"sqlite:///{self.db}"
        self.grpc_addr = f"127.0.0.1:{free_port()}"
        self.http_addr = f"127.0.0.1:{free_port()}" if http else None
        self.metrics_addr = f"127.0.0.1:{free_port()}" if metrics else None
        self.log_path = directory / f"server-{self.grpc_addr.rsplit(':', 1)[1]}.log"
        args = [
            sys.executable,
            "-m",
            "zanzi",
            "serve",
            "--datastore",
            self.datastore,
            "--grpc-addr",
            self.grpc_addr,
            "--workers",
            str(workers),
            "--log-format",
            "json",
            "--shutdown-grace",
            "10",
        ]
        if key is not None:
            args += ["--grpc-preshared-key", key]
        else:
            args += ["--insecure-no-auth"]
        if self.http_addr:
            args += ["--http-addr", self.http_addr]
        if self.metrics_addr:
            args += ["--metrics-addr", self.metrics_addr]
        if tls:
            args += ["--grpc-tls-cert-path", str(tls[0]), "--grpc-tls-key-path", str(tls[1])]
        self.args = [*args, *extra]
        self.env = {**os.environ, **(env or {})}
        self.env.pop("ZANZI_GRPC_PRESHARED_KEY", None)
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> ZanziServer:
        self.launch()
        self.wait_serving(timeout)
        return self

    def launch(self) -> ZanziServer:
        """Start the process without waiting for it (then :meth:`wait_serving`): several
        servers start side by side this way."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(os.getpid()), *self.args],
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        return self

    def channel(self) -> grpc.Channel:
        if self.tls:
            return grpc.secure_channel(
                self.grpc_addr,
                grpc.ssl_channel_credentials(self.tls[0].read_bytes()),
                options=[("grpc.ssl_target_name_override", "localhost")],
            )
        return grpc.insecure_channel(self.grpc_addr)

    def wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"zanzi serve exited with {self.proc.returncode}:\n{self.logs()}")
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"zanzi serve did not become SERVING in {timeout}s:\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server and wait; kill it if it is still there after ``timeout``."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> ZanziServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients ----------------------------------------------------------------------------

    def client(self, key: str | None = None, **options: Any) -> Any:
        """The official client, with the server's key unless another is given."""
        token = key if key is not None else (self.key or "unused")
        channel_options = [(k, v) for k, v in options.items()]
        if self.tls:
            channel_options.append(("grpc.ssl_target_name_override", "localhost"))
            return Client(
                self.grpc_addr,
                bearer_token_credentials(token, self.tls[0].read_bytes()),
                options=channel_options,
            )
        return InsecureClient(self.grpc_addr, token, options=channel_options or None)


@contextlib.contextmanager
def running_nodes(directory: Path, count: int, timeout: float = 60.0, **kwargs: Any) -> Any:
    """``count`` servers with the same options (one datastore: several nodes), started side by
    side; yields the list and stops them all."""
    servers = [ZanziServer(directory, **kwargs) for _ in range(count)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_serving(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def running(directory: Path, **kwargs: Any) -> Any:
    server = ZanziServer(directory, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
