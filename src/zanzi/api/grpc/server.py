"""Running the server: the gRPC server (authzed.api.v1 with health checking and reflection),
the optional HTTP gateway and Prometheus endpoint, graceful shutdown, and worker processes.

One process (``workers=1``) serves everything from a thread pool. With ``workers=N`` a
supervisor starts N worker processes (``spawn``; gRPC does not survive ``fork``) that each
serve the same gRPC (and HTTP) port through ``SO_REUSEPORT`` over the same datastore (SQLite
file or PostgreSQL), so the kernel spreads connections over them and every core works; their
tokens are interchangeable because the datastore holds the token key. The supervisor serves
the metrics of all of them and forwards SIGTERM / SIGINT.

Shutdown (SIGTERM or SIGINT): health turns NOT_SERVING, watches end (UNAVAILABLE, resumable),
new calls are refused, calls in flight get ``shutdown_grace`` seconds to finish, then the
datastore is closed.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zanzi.api.grpc.servicer import Limits
    from zanzi.store.base import Datastore

__all__ = ["ServerConfig", "run"]

log = logging.getLogger("zanzi.server")

SERVICE_NAMES = (
    "authzed.api.v1.PermissionsService",
    "authzed.api.v1.SchemaService",
    "authzed.api.v1.WatchService",
)


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``zanzi serve`` was asked for (picklable: workers receive it)."""

    datastore: str = "sqlite:///zanzi.db"
    read_replicas: tuple[str, ...] = ()  # passed to the datastore as read_replicas=[...]
    grpc_addr: str = "127.0.0.1:50051"
    keys: tuple[str, ...] = ()
    http_addr: str | None = None
    metrics_addr: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 1
    threads: int = 32
    max_concurrent: int = 1000
    shutdown_grace: float = 10.0
    log_level: str = "info"
    log_format: str = "auto"
    limits: Limits | None = None  # None: SpiceDB's defaults
    reuse_port: bool = False
    supervisor_pid: int | None = None


def split_addr(addr: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as a pair; ``:port`` means all interfaces."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {addr!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def run(config: ServerConfig) -> int:
    """Serve until SIGTERM / SIGINT; return the exit status."""
    from zanzi.api.grpc.logs import setup_logging

    setup_logging(config.log_level, config.log_format)
    if config.workers > 1:
        return _supervise(config)
    return serve(config)


# -- one process ------------------------------------------------------------------------------


class _Stop:
    """Set by a signal (or the supervisor's death); ``wait`` until then."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.signal = signum
        self.event.set()

    def watch_parent(self, pid: int) -> None:
        def loop() -> None:
            while not self.event.wait(1.0):
                if os.getppid() != pid:
                    log.warning("the supervisor (pid %d) is gone; shutting down", pid)
                    self.event.set()

        threading.Thread(target=loop, name="zanzi-parent-watch", daemon=True).start()


def serve(config: ServerConfig, *, stop: _Stop | None = None) -> int:
    """One serving process: gRPC, and the HTTP gateway and metrics if asked."""
    import grpc
    from authzed.api.v1 import permission_service_pb2_grpc, schema_service_pb2_grpc, watch_service_pb2_grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    from zanzi.api.grpc.interceptors import RequestInterceptor
    from zanzi.api.grpc.metrics import ObservedDatastore, multiprocess_dir, serve_metrics
    from zanzi.api.grpc.schema import SchemaServicer
    from zanzi.api.grpc.servicer import PermissionsServicer, WatchServicer
    from zanzi.api.service import Service

    stop = stop or _Stop()
    stop.install()
    if config.supervisor_pid is not None:
        stop.watch_parent(config.supervisor_pid)

    service = Service(ObservedDatastore(_open(config)))
    stopping = threading.Event()
    permissions = PermissionsServicer(service, config.limits)
    schema = SchemaServicer(service)
    watch = WatchServicer(service, stopping)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="zanzi-grpc"),
        interceptors=[RequestInterceptor(config.keys)],
        maximum_concurrent_rpcs=config.max_concurrent,
        options=[("grpc.so_reuseport", 1 if config.reuse_port else 0)],
    )
    permission_service_pb2_grpc.add_PermissionsServiceServicer_to_server(permissions, server)
    schema_service_pb2_grpc.add_SchemaServiceServicer_to_server(schema, server)
    watch_service_pb2_grpc.add_WatchServiceServicer_to_server(watch, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )

    try:
        if config.tls_cert and config.tls_key:
            credentials = grpc.ssl_server_credentials(
                [(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())]
            )
            port = server.add_secure_port(config.grpc_addr, credentials)
        else:
            port = server.add_insecure_port(config.grpc_addr)
    except (RuntimeError, OSError) as exc:
        port, reason = 0, str(exc)
    else:
        reason = "no address could be bound"
    if not port:
        service.close()
        log.error("cannot serve gRPC on %s: %s", config.grpc_addr, reason)
        return 1
    host, _ = split_addr(config.grpc_addr)

    gateway = http_server = None
    if config.http_addr:
        from zanzi.api.http.app import Gateway, GatewayServer

        servicers = {
            "authzed.api.v1.PermissionsService": permissions,
            "authzed.api.v1.SchemaService": schema,
            "authzed.api.v1.WatchService": watch,
        }
        gateway = Gateway(
            servicers, config.keys, max_concurrent=config.max_concurrent, ready=service.datastore.ready
        )
        http_server = GatewayServer(split_addr(config.http_addr), gateway, reuse_port=config.reuse_port)
        threading.Thread(target=http_server.serve_forever, name="zanzi-http", daemon=True).start()
    metrics_server = None
    if config.metrics_addr and multiprocess_dir() is None:
        metrics_server = serve_metrics(*split_addr(config.metrics_addr))

    server.start()
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if service.datastore.ready()
        else (health_pb2.HealthCheckResponse.NOT_SERVING)
    )
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, status)
    http_where = None
    if config.http_addr and http_server is not None:
        http_where = f"{split_addr(config.http_addr)[0]}:{http_server.server_port}"
    log.info(
        "serving",
        extra={
            "grpc_addr": f"{host}:{port}",
            "http_addr": http_where,
            "metrics_addr": config.metrics_addr,
            "tls": bool(config.tls_cert),
            "datastore": _redact(config.datastore),
            "read_replicas": [_redact(url) for url in config.read_replicas],
            "pid": os.getpid(),
        },
    )

    stop.event.wait()
    log.info("shutting down", extra={"signal": stop.signal, "grace_seconds": config.shutdown_grace})
    health_servicer.enter_graceful_shutdown()
    stopping.set()
    if gateway is not None and http_server is not None:
        gateway.stopping.set()
        http_server.shutdown()
    grace_end = time.monotonic() + config.shutdown_grace
    server.stop(config.shutdown_grace).wait()
    if gateway is not None and http_server is not None:
        gateway.drain(max(0.0, grace_end - time.monotonic()))
        http_server.server_close()
    if metrics_server is not None:
        metrics_server.shutdown()
    service.close()
    log.info("stopped")
    return 0


def _open(config: ServerConfig) -> Datastore:
    """The datastore of ``config``; read replicas, if any, as the ``read_replicas`` option."""
    from zanzi.store.registry import open_datastore

    if config.read_replicas:
        return open_datastore(config.datastore, read_replicas=list(config.read_replicas))
    return open_datastore(config.datastore)


def _redact(url: str) -> str:
    """A datastore URL without its password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


# -- worker processes -------------------------------------------------------------------------


def _worker(config: ServerConfig) -> None:
    from zanzi.api.grpc.logs import setup_logging

    setup_logging(config.log_level, config.log_format)
    sys.exit(serve(config))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pin_port(addr: str) -> str:
    host, port = split_addr(addr)
    if port:
        return addr
    return f"{'[' + host + ']' if ':' in host else host}:{_free_port(host)}"


def _supervise(config: ServerConfig) -> int:
    """Start ``config.workers`` serving processes on shared ports; restart one that dies; stop
    them all on SIGTERM / SIGINT."""
    # Open once here: migrations and the datastore's id and token key are set up before any
    # worker races for them, and memory:// (one process only) is refused.
    store = _open(config)
    try:
        private = ":memory:" in config.datastore  # sqlite://:memory: is one process's temporary file
        if private or not store.capabilities.multi_process:
            log.error(
                "the datastore %s cannot be shared by several processes; use --workers 1", config.datastore
            )
            return 2
    finally:
        store.close()

    metrics_dir = tempfile.mkdtemp(prefix="zanzi-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    worker_config = dataclasses.replace(
        config,
        grpc_addr=_pin_port(config.grpc_addr),
        http_addr=_pin_port(config.http_addr) if config.http_addr else None,
        workers=1,
        reuse_port=True,
        supervisor_pid=os.getpid(),
    )
    stop = _Stop()
    stop.install()
    metrics_server = None
    if config.metrics_addr:
        from zanzi.api.grpc.metrics import serve_metrics

        metrics_server = serve_metrics(*split_addr(config.metrics_addr), multiprocess_dir=metrics_dir)
    ctx = multiprocessing.get_context("spawn")
    procs: list[Any] = []
    log.info(
        "supervising workers",
        extra={"workers": config.workers, "grpc_addr": worker_config.grpc_addr, "pid": os.getpid()},
    )
    status = 0
    try:
        started: list[float] = []
        for _ in range(config.workers):
            procs.append(_start(ctx, worker_config))
            started.append(time.monotonic())
        while not stop.event.wait(0.5):
            for i, proc in enumerate(procs):
                if proc.is_alive():
                    continue
                _mark_dead(proc.pid)
                if time.monotonic() - started[i] < _STARTUP_SECONDS:
                    log.error("worker %d failed at startup (exit %s); stopping", proc.pid, proc.exitcode)
                    status = 1
                    stop.event.set()
                    break
                log.error("worker %d exited with %s; restarting it", proc.pid, proc.exitcode)
                procs[i] = _start(ctx, worker_config)
                started[i] = time.monotonic()
    finally:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + config.shutdown_grace + 5
        for proc in procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
            _mark_dead(proc.pid)
        if metrics_server is not None:
            metrics_server.shutdown()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    log.info("stopped")
    return status


#: A worker that dies this soon after it started is not restarted (a port in use, a bad file...).
_STARTUP_SECONDS = 10.0


def _start(ctx: Any, config: ServerConfig) -> Any:
    proc = ctx.Process(target=_worker, args=(config,), name="zanzi-worker")
    proc.start()
    return proc


def _mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - metrics are best effort
        pass
