"""Operating ``zanzi serve``: keys, TLS, health checking and reflection, metrics, structured
logs, limits and bounded concurrency, garbage-collected tokens, and graceful shutdown."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    CheckPermissionRequest,
    Consistency,
    ReadRelationshipsRequest,
    ReadSchemaRequest,
    RelationshipFilter,
    WatchRequest,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
    ZedToken,
)
from authzed.api.v1.permission_service_pb2 import ImportBulkRelationshipsRequest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from support.rpc import assert_fails, fails
from support.wire import GrpcWire, check_request, rel, reset, update
from support.zanzi_server import KEY, ZanziServer, free_port

SCHEMA = (
    "definition user {}\n\ndefinition doc {\n    relation viewer: user\n    permission view = viewer\n}\n"
)


# -- keys -------------------------------------------------------------------------------------


def test_missing_key_is_unauthenticated_and_a_wrong_one_permission_denied(server: ZanziServer) -> None:
    with grpc.insecure_channel(server.grpc_addr) as channel:
        read = channel.unary_unary(
            "/authzed.api.v1.SchemaService/ReadSchema",
            request_serializer=ReadSchemaRequest.SerializeToString,
            response_deserializer=lambda b: b,
        )
        f = fails(lambda: read(ReadSchemaRequest()))
        assert f.code == grpc.StatusCode.UNAUTHENTICATED
    f = fails(lambda: server.client(key="not-the-key").ReadSchema(ReadSchemaRequest()))
    assert f.code == grpc.StatusCode.PERMISSION_DENIED and "invalid preshared key" in f.message
    f = fails(lambda: list(server.client(key="not-the-key").Watch(WatchRequest(), timeout=5)))
    assert f.code == grpc.StatusCode.PERMISSION_DENIED


def test_health_and_reflection_need_no_key(server: ZanziServer) -> None:
    with grpc.insecure_channel(server.grpc_addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in (
            "",
            "authzed.api.v1.PermissionsService",
            "authzed.api.v1.SchemaService",
            "authzed.api.v1.WatchService",
        ):
            assert (
                health.Check(health_pb2.HealthCheckRequest(service=name)).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        [answer] = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for s in answer.list_services_response.service}
        assert {
            "authzed.api.v1.PermissionsService",
            "authzed.api.v1.SchemaService",
            "authzed.api.v1.WatchService",
            "grpc.health.v1.Health",
        } <= names
        [found] = stub.ServerReflectionInfo(
            iter(
                [
                    reflection_pb2.ServerReflectionRequest(
                        file_containing_symbol="authzed.api.v1.PermissionsService"
                    )
                ]
            )
        )
        assert found.file_descriptor_response.file_descriptor_proto


def _serve_cmd(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    full_env.pop(
        "ZANZI_GRPC_PRESHARED_KEY", None
    ) if env is None or "ZANZI_GRPC_PRESHARED_KEY" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "zanzi", "serve", "--datastore", f"sqlite:///{tmp_path / 'z.db'}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=tmp_path,
    )


def test_serve_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    result = _serve_cmd(tmp_path, "--grpc-addr", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "--grpc-preshared-key" in result.stderr and "ZANZI_GRPC_PRESHARED_KEY" in result.stderr
    both = _serve_cmd(tmp_path, "--grpc-preshared-key", "k", "--insecure-no-auth")
    assert both.returncode == 2
    half_tls = _serve_cmd(tmp_path, "--grpc-preshared-key", "k", "--grpc-tls-cert-path", "x.pem")
    assert half_tls.returncode == 2


def test_read_replicas_need_postgresql(tmp_path: Path) -> None:
    replica = "postgresql://zanzi@replica.invalid/authz"
    on_sqlite = _serve_cmd(tmp_path, "--grpc-preshared-key", "k", "--datastore-read-replica", replica)
    assert on_sqlite.returncode == 2
    assert "needs a PostgreSQL datastore; sqlite:// has no read replicas" in on_sqlite.stderr
    on_memory = _serve_cmd(
        tmp_path, "--grpc-preshared-key", "k", "--datastore", "memory://",
        env={"ZANZI_DATASTORE_READ_REPLICA": replica},
    )  # fmt: skip
    assert on_memory.returncode == 2
    assert "ZANZI_DATASTORE_READ_REPLICA" in on_memory.stderr and "memory:// has no" in on_memory.stderr


def test_read_replica_urls_from_flags_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from zanzi.api.grpc import server as server_module
    from zanzi.cli.main import cli

    seen: list[Any] = []
    monkeypatch.setattr(server_module, "run", lambda config: seen.append(config) or 0)
    primary = "postgresql://zanzi@db/authz"
    multi_host = "postgresql://zanzi@r1:5432,r2:5432/authz"  # libpq's multi-host form keeps its comma
    base = ["serve", "--grpc-preshared-key", "k", "--datastore", primary]
    runner = CliRunner()
    result = runner.invoke(cli, [*base, "--datastore-read-replica", multi_host,
                                 "--datastore-read-replica", "postgresql://zanzi@r3/authz"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen[-1].read_replicas == (multi_host, "postgresql://zanzi@r3/authz")
    result = runner.invoke(
        cli,
        base,
        env={"ZANZI_DATASTORE_READ_REPLICA": "postgresql://zanzi@r1/authz, postgresql://zanzi@r2/authz"},
    )
    assert result.exit_code == 0, result.output
    assert seen[-1].read_replicas == ("postgresql://zanzi@r1/authz", "postgresql://zanzi@r2/authz")
    result = runner.invoke(cli, base)
    assert result.exit_code == 0 and seen[-1].read_replicas == ()
    help_text = runner.invoke(cli, ["serve", "--help"]).output
    assert "--datastore-read-replica URL" in help_text and "ZANZI_DATASTORE_READ_REPLICA" in help_text


def test_key_from_the_environment(tmp_path: Path) -> None:
    server = ZanziServer(tmp_path, key=None, env={"ZANZI_GRPC_PRESHARED_KEY": "from-env"})
    server.args.remove("--insecure-no-auth")
    server.env["ZANZI_GRPC_PRESHARED_KEY"] = "from-env"
    with server:
        server.client(key="from-env").WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        assert (
            fails(lambda: server.client(key=KEY).ReadSchema(ReadSchemaRequest())).code
            == grpc.StatusCode.PERMISSION_DENIED
        )


def test_insecure_no_auth_warns_loudly_and_serves_anyone(tmp_path: Path) -> None:
    with ZanziServer(tmp_path, key=None) as server:
        server.client(key="anything").WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        assert "WITHOUT AUTHENTICATION" in server.logs()


# -- TLS ---------------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        cert, key = directory / "cert.pem", directory / "key.pem"
        try:
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    str(key),
                    "-out",
                    str(cert),
                    "-days",
                    "1",
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                ],
                check=True,
                capture_output=True,
            )
        except (OSError, subprocess.CalledProcessError):
            pytest.skip(
                "neither the cryptography package nor the openssl command is available to make a certificate"
            )
        return cert, key
    import ipaddress

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


def test_tls(tmp_path: Path) -> None:
    with ZanziServer(tmp_path, tls=_self_signed(tmp_path)) as server:
        client = server.client()
        client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        token = client.WriteRelationships(
            WriteRelationshipsRequest(updates=[update("doc:a#viewer@user:b")])
        ).written_at
        r = client.CheckPermission(
            check_request("doc:a", "view", "user:b", consistency=Consistency(at_least_as_fresh=token))
        )
        assert r.permissionship == r.PERMISSIONSHIP_HAS_PERMISSION
        plaintext = ZanziServer(tmp_path)
        plaintext.grpc_addr = server.grpc_addr
        f = fails(lambda: plaintext.client().ReadSchema(ReadSchemaRequest(), timeout=3))
        assert f.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


# -- metrics and logs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(grpc_wire: GrpcWire) -> str:
    """The session server, with this module's schema."""
    return reset(grpc_wire, SCHEMA)


def test_metrics_count_requests_by_method_and_code(server: ZanziServer, client: Any, shared: str) -> None:
    client.CheckPermission(check_request("doc:m", "view", "user:m"))
    fails(lambda: client.CheckPermission(check_request("nosuch:m", "view", "user:m")))
    with urllib.request.urlopen(f"http://{server.metrics_addr}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert 'zanzi_grpc_requests_total{code="OK",method="PermissionsService/CheckPermission"}' in text
    assert (
        'zanzi_grpc_errors_total{code="FAILED_PRECONDITION",method="PermissionsService/CheckPermission"}'
        in text
    )
    assert (
        'zanzi_grpc_request_duration_seconds_bucket{le="0.005",method="PermissionsService/CheckPermission"}'
        in text
    )
    assert 'zanzi_datastore_operation_duration_seconds_count{operation="query"}' in text


def test_one_json_log_line_per_request(server: ZanziServer, client: Any, shared: str) -> None:
    client.CheckPermission(check_request("doc:logged", "view", "user:x"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        records = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
        checks = [r for r in records if r.get("method") == "PermissionsService/CheckPermission"]
        if checks:
            break
        time.sleep(0.1)
    last = checks[-1]
    assert last["msg"] == "request" and last["code"] == "OK" and last["protocol"] == "grpc"
    assert isinstance(last["duration_ms"], float) and last["level"] == "info"


# -- limits, concurrency, garbage collection ---------------------------------------------------


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server with a 1 s GC window, at most 2 calls at once and a read limit of 5."""
    directory = tmp_path_factory.mktemp("tight")
    server = ZanziServer(
        directory,
        datastore=f"sqlite:///{directory / 'tight.db'}?gc_window=1",
        extra=("--max-concurrent-requests", "2", "--max-read-relationships-limit", "5"),
    )
    with server:
        yield server


def test_read_schema_before_any_is_not_found(tight: ZanziServer) -> None:
    assert_fails(lambda: tight.client().ReadSchema(ReadSchemaRequest()), grpc.StatusCode.NOT_FOUND)


def test_configured_limits_are_enforced(tight: ZanziServer) -> None:
    client = tight.client()
    client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
    req = ReadRelationshipsRequest(
        relationship_filter=RelationshipFilter(resource_type="doc"), optional_limit=6
    )
    assert_fails(
        lambda: list(client.ReadRelationships(req)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT",
        "maximum allowed of 5",
    )


def test_a_token_older_than_the_gc_window_is_out_of_range(tight: ZanziServer) -> None:
    client = tight.client()
    client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
    old = client.WriteRelationships(
        WriteRelationshipsRequest(updates=[update("doc:gc#viewer@user:a")])
    ).written_at
    client.WriteRelationships(WriteRelationshipsRequest(updates=[update("doc:gc#viewer@user:b")]))
    time.sleep(1.3)  # the revision after `old` is now older than the window: `old` is no longer readable
    exact = check_request("doc:gc", "view", "user:a", consistency=Consistency(at_exact_snapshot=old))
    assert_fails(lambda: client.CheckPermission(exact), grpc.StatusCode.OUT_OF_RANGE)


def test_calls_beyond_the_concurrency_bound_are_resource_exhausted(tight: ZanziServer) -> None:
    client = tight.client()
    client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
    watches = [client.Watch(WatchRequest(), timeout=20) for _ in range(2)]
    try:
        time.sleep(0.3)  # both streams are running
        f = fails(lambda: client.CheckPermission(check_request("doc:c", "view", "user:c")))
        assert f.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        for w in watches:
            w.cancel()
    deadline = time.monotonic() + 5
    while True:  # slots come back once the streams end
        try:
            client.CheckPermission(check_request("doc:c", "view", "user:c"))
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


# -- graceful shutdown --------------------------------------------------------------------------


def test_sigterm_lets_calls_in_flight_finish(tmp_path: Path) -> None:
    server = ZanziServer(tmp_path, http=True).start()
    try:
        client = server.client()
        client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        first_sent = threading.Event()
        resume = threading.Event()

        def requests() -> Any:
            yield ImportBulkRelationshipsRequest(
                relationships=[rel(f"doc:s{i}#viewer@user:a") for i in range(100)]
            )
            first_sent.set()
            resume.wait(10)
            for chunk in range(1, 5):
                yield ImportBulkRelationshipsRequest(
                    relationships=[rel(f"doc:s{chunk}_{i}#viewer@user:a") for i in range(100)]
                )

        result: dict[str, Any] = {}
        call = threading.Thread(target=lambda: result.update(r=client.ImportBulkRelationships(requests())))
        call.start()
        assert first_sent.wait(10)
        time.sleep(0.3)  # the call is in the server
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        time.sleep(0.5)
        with grpc.insecure_channel(server.grpc_addr) as channel:  # no longer serving
            try:
                status = (
                    health_pb2_grpc.HealthStub(channel)
                    .Check(health_pb2.HealthCheckRequest(), timeout=2)
                    .status
                )
                assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
        resume.set()
        call.join(15)
        assert result["r"].num_loaded == 500  # the call in flight completed
        assert server.proc.wait(20) == 0  # type: ignore[union-attr]
        assert '"msg":"stopped"' in server.logs()
    finally:
        resume.set()
        server.stop()
    with ZanziServer(tmp_path) as again:  # everything it acknowledged is there
        reads = again.client().ReadRelationships(
            ReadRelationshipsRequest(relationship_filter=RelationshipFilter(resource_type="doc"))
        )
        assert len(list(reads)) == 500


def test_sigterm_ends_watches_so_clients_can_resume(tmp_path: Path) -> None:
    with ZanziServer(tmp_path) as server:
        client = server.client()
        client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        stream = client.Watch(WatchRequest(), timeout=30)
        time.sleep(0.3)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        f = fails(lambda: list(stream))
        assert f.code == grpc.StatusCode.UNAVAILABLE
        assert server.proc.wait(20) == 0  # type: ignore[union-attr]
        assert time.monotonic() - started < 5  # an open watch does not hold shutdown for the grace period


def test_check_with_token_survives_restart(tmp_path: Path) -> None:
    with ZanziServer(tmp_path) as server:
        client = server.client()
        client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        token = client.WriteRelationships(
            WriteRelationshipsRequest(updates=[update("doc:r#viewer@user:r")])
        ).written_at
    with ZanziServer(tmp_path) as server:
        r = server.client().CheckPermission(
            CheckPermissionRequest(
                **{
                    **_fields(check_request("doc:r", "view", "user:r")),
                    "consistency": Consistency(at_least_as_fresh=ZedToken(token=token.token)),
                }
            )
        )
        assert r.permissionship == r.PERMISSIONSHIP_HAS_PERMISSION


def _fields(msg: Any) -> dict[str, Any]:
    return {f.name: v for f, v in msg.ListFields()}
