"""Client-side security and retry helpers: token metadata, TLS from env, unary retry delays."""

from __future__ import annotations

import time

import grpc
import pytest

from streamprint_client import _common
from streamprint_client.errors import StatusDetail, StreamprintRpcError


def test_token_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMPRINT_TOKEN", raising=False)
    assert _common.auth_metadata() == ()
    assert _common.auth_metadata("abc") == (("authorization", "Bearer abc"),)
    monkeypatch.setenv("STREAMPRINT_TOKEN", "from-env")
    assert _common.auth_metadata() == (("authorization", "Bearer from-env"),)
    assert _common.auth_metadata("explicit") == (("authorization", "Bearer explicit"),)
    with pytest.raises(ValueError):
        _common.auth_metadata("two words")


def test_tls_only_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("STREAMPRINT_CA", "STREAMPRINT_CLIENT_CERT", "STREAMPRINT_CLIENT_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert _common.tls_credentials() is None
    with pytest.raises(ValueError):
        _common.tls_credentials(client_cert="cert.pem")
    monkeypatch.setenv("STREAMPRINT_CA", "/nonexistent/ca.pem")
    with pytest.raises(OSError):
        _common.tls_credentials()


def _error(code: grpc.StatusCode, retry_s: float | None = None) -> StreamprintRpcError:
    details = []
    if retry_s is not None:
        details.append(StatusDetail("google.rpc.RetryInfo", {"retry_delay_s": retry_s}))
    return StreamprintRpcError(code, "x", details)


def test_retry_delays_only_unavailable_within_the_deadline() -> None:
    unavailable = _error(grpc.StatusCode.UNAVAILABLE)
    delays = [_common.retry_delay(unavailable, i, None) for i in range(10)]
    assert delays[: len(_common.UNARY_RETRY_DELAYS_S)] == list(_common.UNARY_RETRY_DELAYS_S)
    assert delays[len(_common.UNARY_RETRY_DELAYS_S) :] == [None] * (
        10 - len(_common.UNARY_RETRY_DELAYS_S)
    )
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                 grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.DEADLINE_EXCEEDED):  # fmt: skip
        assert _common.retry_delay(_error(code), 0, None) is None
    assert _common.retry_delay(_error(grpc.StatusCode.UNAVAILABLE, 3.0), 0, None) == 3.0
    assert _common.retry_delay(unavailable, 0, time.monotonic() + 0.1) is None
    assert _common.retry_delay(unavailable, 0, time.monotonic() + 10) == 0.25


def test_first_contact_gives_up_sooner() -> None:
    unavailable = _error(grpc.StatusCode.UNAVAILABLE)
    schedule = [_common.retry_delay(unavailable, i, None, connected=False) for i in range(4)]
    assert schedule == [*_common.FIRST_CONTACT_RETRY_DELAYS_S, None, None]


def test_unary_attempts_follow_the_documented_schedule_only() -> None:
    """A server that answers every call UNAVAILABLE: before first contact the client makes
    three attempts (the call and two retries, 0.25 and 0.5 s apart). gRPC's own retry policy
    used to run inside that loop too: 9 attempts."""
    from concurrent import futures

    from streamprint_client import StreamprintClient

    attempts: list[float] = []

    def unavailable(request: bytes, context: grpc.ServicerContext) -> bytes:
        attempts.append(time.monotonic())
        context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")

    handler = grpc.method_handlers_generic_handler(
        "streamprint.v1.FingerprintService",
        {"GetServerInfo": grpc.unary_unary_rpc_method_handler(unavailable)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with StreamprintClient(f"127.0.0.1:{port}") as client, pytest.raises(StreamprintRpcError) as info:
            client.server_info(timeout_s=20)
    finally:
        server.stop(0)
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert len(attempts) == 1 + len(_common.FIRST_CONTACT_RETRY_DELAYS_S), len(attempts)


def test_caller_options_override_the_client_defaults() -> None:
    options = dict(_common.channel_options([("grpc.max_receive_message_length", 100)]))
    assert options["grpc.max_receive_message_length"] == 100
    assert options["grpc.enable_retries"] == 0
    # gRPC reads min_reconnect_backoff_ms as the shortest connect timeout as well
    assert "grpc.min_reconnect_backoff_ms" not in options


def test_describe_prints_each_bad_request_once() -> None:
    """Each BadRequest detail printed every detail's violations: two details, four lines."""
    details = [
        StatusDetail("google.rpc.BadRequest", {"field_violations": [{"field": "a", "description": "x"}]}),
        StatusDetail("google.rpc.ErrorInfo", {"reason": "R", "domain": "d", "metadata": {"k": "v"}}),
        StatusDetail("google.rpc.BadRequest", {"field_violations": [{"field": "b", "description": "y"}]}),
    ]
    text = StreamprintRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad", details).describe()
    assert text.splitlines() == ["INVALID_ARGUMENT: bad", "  field a: x", "  reason R (d, k=v)", "  field b: y"]
