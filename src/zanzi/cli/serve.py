"""``zanzi serve``: SpiceDB's API (authzed.api.v1 over gRPC, and its HTTP/JSON gateway) on a
datastore. The options follow ``spicedb serve`` where they overlap."""

from __future__ import annotations

import os

import click

from zanzi.cli.main import state

__all__ = ["COMMANDS", "serve"]

KEY_ENV = "ZANZI_GRPC_PRESHARED_KEY"
REPLICA_ENV = "ZANZI_DATASTORE_READ_REPLICA"
#: Built-in datastores that have no read replicas (third-party backends decide for themselves).
_NO_REPLICAS = ("memory", "sqlite")

_WARNING = """\
################################################################################
#  WARNING: zanzi serve is running WITHOUT AUTHENTICATION (--insecure-no-auth).  #
#  Anyone who can reach {addr:<21} can read and change every permission. #
#  Use --grpc-preshared-key KEY (or {env}) outside of local experiments.  #
################################################################################"""


#: At most this many worker processes by default (each holds its own caches and connections).
MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """One worker process per core this process may run on, up to :data:`MAX_DEFAULT_WORKERS`
    (processes measured faster than threads; see the README's "Concurrency" notes)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


@click.command()
@click.option(
    "--grpc-preshared-key",
    "key",
    envvar=KEY_ENV,
    show_envvar=True,
    metavar="KEY",
    help="The key clients must send as 'authorization: Bearer KEY'; several keys may be given, "
    "separated by commas.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve without a key (anyone reaching the port has full access); for local experiments only.",
)
@click.option(
    "--datastore",
    metavar="URL",
    help="Datastore URL (sqlite:///zanzi.db by default, or the global --datastore / ZANZI_DATASTORE): "
    "sqlite:///path.db, postgresql://..., memory:// (one worker only).",
)
@click.option(
    "--datastore-read-replica",
    "read_replicas",
    multiple=True,
    envvar=REPLICA_ENV,
    show_envvar=True,
    metavar="URL",
    help="A read replica of the PostgreSQL datastore (repeatable; in the environment, URLs "
    "separated by commas). Snapshot reads go to a replica once it has replayed the revision "
    "they need, to the primary otherwise.",
)
@click.option(
    "--grpc-addr",
    default="127.0.0.1:50051",
    show_default=True,
    metavar="HOST:PORT",
    help="Address of the gRPC API (port 0: any free port).",
)
@click.option(
    "--http-addr", metavar="HOST:PORT", help="Serve the HTTP/JSON gateway (and /openapi.json) here."
)
@click.option(
    "--metrics-addr", metavar="HOST:PORT", help="Serve Prometheus metrics at http://HOST:PORT/metrics."
)
@click.option("--grpc-tls-cert-path", "tls_cert", metavar="FILE", help="TLS certificate (PEM) for gRPC.")
@click.option("--grpc-tls-key-path", "tls_key", metavar="FILE", help="TLS private key (PEM) for gRPC.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Serving processes sharing the ports (default: one per core, at most 8; 1 for memory://).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Request threads per worker process.",
)
@click.option(
    "--max-concurrent-requests",
    "max_concurrent",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Calls in progress per worker (streams included); more are refused with RESOURCE_EXHAUSTED.",
)
@click.option(
    "--shutdown-grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM / SIGINT, how long calls in flight may take to finish.",
)
@click.option(
    "--max-read-relationships-limit",
    "max_read",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Largest optional_limit of ReadRelationships.",
)
@click.option(
    "--max-delete-relationships-limit",
    "max_delete",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Largest optional_limit of DeleteRelationships.",
)
@click.option(
    "--max-lookup-resources-limit",
    "max_lookup",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Largest optional_limit of LookupResources (and LookupSubjects).",
)
@click.option(
    "--max-bulk-export-relationships-limit",
    "max_export",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Largest batch of ExportBulkRelationships.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Verbosity of the logs (one line per request at info).",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    help="Log lines as JSON or text (auto: text on a terminal, JSON otherwise).",
)
def serve(
    key: str | None,
    insecure_no_auth: bool,
    datastore: str | None,
    read_replicas: tuple[str, ...],
    grpc_addr: str,
    http_addr: str | None,
    metrics_addr: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    workers: int | None,
    threads: int,
    max_concurrent: int,
    shutdown_grace: float,
    max_read: int,
    max_delete: int,
    max_lookup: int,
    max_export: int,
    log_level: str,
    log_format: str,
) -> None:
    """Serve SpiceDB's API (authzed.api.v1) so the official clients work unchanged.

    Clients authenticate with 'authorization: Bearer KEY'. Stops gracefully on SIGTERM or
    SIGINT, finishing the calls in flight.
    """
    from zanzi.api.grpc.server import ServerConfig, run, split_addr
    from zanzi.api.grpc.servicer import Limits

    keys = tuple(k.strip() for k in (key or "").split(",") if k.strip())
    if not keys and not insecure_no_auth:
        raise click.UsageError(
            f"a preshared key is required: --grpc-preshared-key KEY or {KEY_ENV}=KEY "
            "(or --insecure-no-auth, for local experiments only)"
        )
    if keys and insecure_no_auth:
        raise click.UsageError("--insecure-no-auth and a preshared key are mutually exclusive")
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--grpc-tls-cert-path and --grpc-tls-key-path go together")
    for name, addr in (
        ("--grpc-addr", grpc_addr),
        ("--http-addr", http_addr),
        ("--metrics-addr", metrics_addr),
    ):
        if addr is not None:
            try:
                split_addr(addr)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=name) from None
    url = datastore or state().datastore
    replicas = _replica_urls(read_replicas)
    scheme = url.partition("://")[0].lower()
    if replicas and scheme in _NO_REPLICAS:
        raise click.UsageError(
            f"--datastore-read-replica (or {REPLICA_ENV}) needs a PostgreSQL datastore; "
            f"{scheme}:// has no read replicas"
        )
    if workers is None:
        workers = 1 if url.startswith("memory:") or ":memory:" in url else default_workers()
    if not keys:
        click.echo(_WARNING.format(addr=grpc_addr, env=KEY_ENV), err=True)
    config = ServerConfig(
        datastore=url,
        read_replicas=replicas,
        grpc_addr=grpc_addr,
        keys=keys,
        http_addr=http_addr,
        metrics_addr=metrics_addr,
        tls_cert=tls_cert,
        tls_key=tls_key,
        workers=workers,
        threads=threads,
        max_concurrent=max_concurrent,
        shutdown_grace=shutdown_grace,
        log_level=log_level,
        log_format=log_format,
        limits=Limits(
            read_relationships=max_read,
            delete_relationships=max_delete,
            lookup_resources=max_lookup,
            lookup_subjects=max_lookup,
            export_batch=max_export,
        ),
    )
    raise click.exceptions.Exit(run(config))


def _replica_urls(values: tuple[str, ...]) -> tuple[str, ...]:
    """The replica URLs: each flag is one URL (a libpq multi-host URL keeps its commas); the
    environment variable holds comma-separated URLs."""
    source = click.get_current_context().get_parameter_source("read_replicas")
    if source is not click.ParameterSource.ENVIRONMENT:
        return tuple(v.strip() for v in values if v.strip())
    return tuple(part.strip() for v in values for part in v.split(",") if part.strip())


COMMANDS = [serve]
