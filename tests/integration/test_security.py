"""Security: TLS, mutual TLS, bearer tokens with roles, and the refusal to listen unsafely."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_harness import ServerThread
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tls_certs import Certs, make_certs

from streamprint.api.auth import TokenFileError, TokenTable, bearer_token, token_id
from streamprint.api.server import StartupRefusedError, StreamprintServer
from streamprint.config import ServerConfig, is_loopback
from streamprint_client import AsyncStreamprintClient, StreamprintClient, StreamprintRpcError
from streamprint_client import cli as client_cli
from streamprint_client._generated import fingerprint_service_pb2 as fs_pb
from streamprint_client._generated import fingerprint_service_pb2_grpc as fs_grpc

USER_TOKEN = "user-s3cret-token-AAAA"
ADMIN_TOKEN = "admin-s3cret-token-BBBB"
OTHER_USER_TOKEN = "user-two-token-CCCC"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "tokens"
    path.write_text(
        f"# test tokens\n{USER_TOKEN} user\n\n{ADMIN_TOKEN} admin\n{OTHER_USER_TOKEN} user\n"
    )
    return path


@pytest.fixture(scope="module")
def secure_server(certs: Certs, token_file: Path) -> Iterator[ServerThread]:
    """TLS + tokens on 127.0.0.1:0."""
    import dataclasses

    from grpc_harness import BASE_CONFIG

    thread = ServerThread(
        dataclasses.replace(
            BASE_CONFIG,
            tls_cert=str(certs.server_cert),
            tls_key=str(certs.server_key),
            auth_tokens=str(token_file),
        )
    ).start()
    yield thread
    thread.stop()


def _wav(media: Path) -> bytes:
    return (media / "short.wav").read_bytes()


# ---------------------------------------------------------------------------- TLS


def test_tls_client_with_ca_is_served(secure_server: ServerThread, certs: Certs) -> None:
    with StreamprintClient(secure_server.address, ca=str(certs.ca), token=USER_TOKEN) as client:
        info = client.server_info(timeout_s=10)
    assert info.server_version


def test_plaintext_client_cannot_talk_to_a_tls_server(secure_server: ServerThread) -> None:
    with (
        StreamprintClient(secure_server.address, token=USER_TOKEN) as client,
        pytest.raises(StreamprintRpcError) as info,
    ):
        client.server_info(timeout_s=3)
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_untrusted_ca_is_refused(secure_server: ServerThread, certs: Certs) -> None:
    with (
        StreamprintClient(
            secure_server.address, ca=str(certs.other_ca), token=USER_TOKEN
        ) as client,
        pytest.raises(StreamprintRpcError) as info,
    ):
        client.server_info(timeout_s=3)
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_mutual_tls_needs_a_client_certificate(
    make_server: Callable[..., ServerThread], certs: Certs
) -> None:
    srv = make_server(
        tls_cert=str(certs.server_cert),
        tls_key=str(certs.server_key),
        tls_client_ca=str(certs.ca),
    )
    with (
        StreamprintClient(srv.address, ca=str(certs.ca)) as client,
        pytest.raises(StreamprintRpcError) as info,
    ):
        client.server_info(timeout_s=3)
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    with StreamprintClient(
        srv.address,
        ca=str(certs.ca),
        client_cert=str(certs.client_cert),
        client_key=str(certs.client_key),
    ) as client:
        assert client.server_info(timeout_s=10).server_version


def test_tls_stream_and_async_client(
    secure_server: ServerThread, certs: Certs, media_dir: Path
) -> None:
    import asyncio

    with StreamprintClient(secure_server.address, ca=str(certs.ca), token=USER_TOKEN) as client:
        updates = list(client.stream([_wav(media_dir)]))
    assert updates[-1].final

    async def run() -> bool:
        async with AsyncStreamprintClient(
            secure_server.address, ca=str(certs.ca), token=USER_TOKEN
        ) as client:
            finals = [u async for u in client.stream([_wav(media_dir)])]
            return finals[-1].final

    assert asyncio.run(run())


# ---------------------------------------------------------------------------- tokens and roles


@pytest.mark.parametrize("token", [None, "wrong-token", USER_TOKEN[:-1], USER_TOKEN + "x"])
def test_missing_or_bad_token_is_unauthenticated(
    secure_server: ServerThread, certs: Certs, media_dir: Path, token: str | None
) -> None:
    with StreamprintClient(secure_server.address, ca=str(certs.ca), token=token) as client:
        with pytest.raises(StreamprintRpcError) as info:
            client.server_info(timeout_s=10)
        assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
        assert info.value.reason == "UNAUTHENTICATED"  # ErrorInfo, as on every status
        with pytest.raises(StreamprintRpcError) as info:
            list(client.stream([_wav(media_dir)]))
        assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(StreamprintRpcError) as info:
            client.fingerprint(_wav(media_dir))
        assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert secure_server.plane.active_streams == 0


def test_health_and_reflection_stay_open(secure_server: ServerThread, certs: Certs) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    with grpc.secure_channel(secure_server.address, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert "streamprint.v1.FingerprintService" in names


def test_user_role_is_denied_admin_rpcs(secure_server: ServerThread, certs: Certs) -> None:
    with StreamprintClient(secure_server.address, ca=str(certs.ca), token=USER_TOKEN) as client:
        for call in (client.cache_stats, client.clear_cache):
            with pytest.raises(StreamprintRpcError) as info:
                call(timeout_s=10)
            assert info.value.code is grpc.StatusCode.PERMISSION_DENIED
            assert info.value.reason == "PERMISSION_DENIED"
            assert "admin" in info.value.message
    with StreamprintClient(secure_server.address, ca=str(certs.ca), token=ADMIN_TOKEN) as client:
        assert "fingerprints" in client.cache_stats(timeout_s=10)
        assert "fingerprints_removed" in client.clear_cache(timeout_s=10)
        assert client.server_info(timeout_s=10).server_version  # admin may do what users do


def test_user_token_streams_and_fingerprints(
    secure_server: ServerThread, certs: Certs, media_dir: Path
) -> None:
    with StreamprintClient(secure_server.address, ca=str(certs.ca), token=USER_TOKEN) as client:
        assert list(client.stream([_wav(media_dir)]))[-1].final
        assert client.fingerprint(_wav(media_dir)).fingerprint.values


def test_tokens_are_never_logged(
    secure_server: ServerThread, certs: Certs, media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for token in (USER_TOKEN, "wrong-token-ZZZZ"):
        with StreamprintClient(secure_server.address, ca=str(certs.ca), token=token) as client:
            for call in (client.server_info, client.clear_cache):
                with contextlib.suppress(StreamprintRpcError):
                    call(timeout_s=10)
    text = caplog.text
    assert "unauthenticated" in text.lower() or "permission denied" in text.lower()
    for token in (USER_TOKEN, ADMIN_TOKEN, "wrong-token-ZZZZ"):
        assert token not in text


def test_token_file_parsing_names_lines_not_tokens(tmp_path: Path) -> None:
    table = TokenTable.parse(f"{USER_TOKEN} user\n# c\n{ADMIN_TOKEN} admin\n")
    assert len(table) == 2
    user = table.lookup(USER_TOKEN)
    assert user is not None and user.role == "user" and USER_TOKEN not in user.id
    assert table.lookup("nope") is None
    assert table.identify([("authorization", f"Bearer {ADMIN_TOKEN}")]) == table.lookup(ADMIN_TOKEN)
    assert bearer_token([("authorization", f"Basic {USER_TOKEN}")]) is None
    for bad in (f"{USER_TOKEN} root\n", f"{USER_TOKEN}\n", "", f"{USER_TOKEN} user extra\n"):
        with pytest.raises(TokenFileError) as info:
            TokenTable.parse(bad)
        assert USER_TOKEN not in str(info.value)


# ---------------------------------------------------------------------------- startup refusal


def test_non_loopback_without_tls_and_tokens_is_refused(certs: Certs, token_file: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    public = ServerConfig(host="0.0.0.0", port=0)
    assert any("--insecure" in p for p in public.security_problems())
    tls_only = ServerConfig(
        host="0.0.0.0", port=0, tls_cert=str(certs.server_cert), tls_key=str(certs.server_key)
    )
    assert any("--auth-tokens" in p for p in tls_only.security_problems())
    full = ServerConfig(
        host="0.0.0.0",
        port=0,
        tls_cert=str(certs.server_cert),
        tls_key=str(certs.server_key),
        auth_tokens=str(token_file),
    )
    assert full.security_problems() == []
    assert ServerConfig(host="0.0.0.0", port=0, insecure=True).security_problems() == []
    assert ServerConfig(tls_cert=str(certs.server_cert)).security_problems()
    assert ServerConfig(tls_client_ca=str(certs.ca)).security_problems()

    import asyncio

    with pytest.raises(StartupRefusedError):
        asyncio.run(StreamprintServer(public).start())


def test_serve_cli_exits_non_zero_with_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamprint", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "non-loopback" in result.stderr and "--insecure" in result.stderr
    bad_tokens = tmp_path / "tokens"
    bad_tokens.write_text("only-one-field\n")
    result = subprocess.run(
        [sys.executable, "-m", "streamprint", "serve", "--port", "0",
         "--auth-tokens", str(bad_tokens)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "line 1" in result.stderr and "only-one-field" not in result.stderr


# ---------------------------------------------------------------------------- client CLI


def test_client_cli_flags_and_environment(
    secure_server: ServerThread, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    code = client_cli.main(
        ["--server", secure_server.address, "--ca", str(certs.ca), "--token", ADMIN_TOKEN,
         "cache-stats", "--json"],
        out=out,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    assert "fingerprints" in json.loads(out.getvalue().splitlines()[0])

    monkeypatch.setenv("STREAMPRINT_CA", str(certs.ca))
    monkeypatch.setenv("STREAMPRINT_TOKEN", USER_TOKEN)
    out = io.StringIO()
    assert client_cli.main(["--server", secure_server.address, "info", "--json"], out=out) == 0
    out = io.StringIO()
    code = client_cli.main(["--server", secure_server.address, "cache-clear", "--json"], out=out)
    assert code == 1
    assert json.loads(out.getvalue().splitlines()[-1])["error"]["code"] == "PERMISSION_DENIED"
    monkeypatch.setenv("STREAMPRINT_TOKEN", "not-a-token")
    out = io.StringIO()
    assert client_cli.main(["--server", secure_server.address, "info", "--json"], out=out) == 1
    assert "UNAUTHENTICATED" in out.getvalue()


# ---------------------------------------------------------------------------- per-token quota


def _held_stream(
    address: str, certs: Certs, token: str, gate: threading.Event
) -> tuple[grpc.Channel, object]:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    channel = grpc.secure_channel(address, credentials)

    def requests() -> Iterator[fs_pb.StreamFingerprintRequest]:
        yield fs_pb.StreamFingerprintRequest(config=fs_pb.StreamConfig())
        gate.wait(20)

    call = fs_grpc.FingerprintServiceStub(channel).StreamFingerprint(
        requests(), metadata=(("authorization", f"Bearer {token}"),)
    )
    return channel, call


def test_per_token_stream_quota(
    make_server: Callable[..., ServerThread], certs: Certs, token_file: Path, media_dir: Path
) -> None:
    from test_grpc_service import _wait_for

    srv = make_server(
        tls_cert=str(certs.server_cert),
        tls_key=str(certs.server_key),
        auth_tokens=str(token_file),
        max_streams_per_token=2,
        retry_after_s=1.5,
    )
    gate = threading.Event()
    held = [_held_stream(srv.address, certs, USER_TOKEN, gate) for _ in range(2)]
    try:
        assert _wait_for(lambda: srv.plane.active_streams == 2)
        with (
            StreamprintClient(srv.address, ca=str(certs.ca), token=USER_TOKEN) as client,
            pytest.raises(StreamprintRpcError) as info,
        ):
            list(client.stream([_wav(media_dir)]))
        assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.error_info_metadata["limit"] == "token_streams"
        assert info.value.retry_after_s == pytest.approx(1.5)
        # another token is not held back by the first one's quota
        with StreamprintClient(srv.address, ca=str(certs.ca), token=OTHER_USER_TOKEN) as client:
            assert list(client.stream([_wav(media_dir)]))[-1].final
    finally:
        gate.set()
        for channel, _ in held:
            channel.close()
    assert _wait_for(lambda: srv.plane.active_streams == 0)
    assert srv.plane.ledger.total() == 0 and srv.plane.streams_of(token_id(USER_TOKEN)) == 0
    with StreamprintClient(srv.address, ca=str(certs.ca), token=USER_TOKEN) as client:
        assert list(client.stream([_wav(media_dir)]))[-1].final
