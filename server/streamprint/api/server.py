"""Server bootstrap: a grpc.aio server with the services, health, reflection and limits.

:class:`StreamprintServer` is what tests and ``streamprint serve`` start; :func:`serve` adds
signal handling: on SIGTERM (or SIGINT) health turns NOT_SERVING, live streams finish early
and get their final update, new calls are refused, and after at most ``--grace-s`` the
remaining calls are cancelled and the process exits 0.

With ``--workers N`` (N > 1) this runs in each worker process (``role`` set): the public
port is bound with ``SO_REUSEPORT`` next to the other workers', a private unix socket serves
the calls other workers forward (:mod:`streamprint.api.peers`), streams are counted in the
shared ledger, and metrics are served on a unix socket for the supervisor to merge
(:mod:`streamprint.workers.supervisor`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from streamprint.allocator import trim_periodically, tune_allocator
from streamprint.api._generated import admin_service_pb2, admin_service_pb2_grpc
from streamprint.api._generated import fingerprint_service_pb2 as fs_pb
from streamprint.api._generated import fingerprint_service_pb2_grpc as fs_grpc
from streamprint.api.auth import AuthInterceptor, TokenFileError, TokenTable
from streamprint.api.health import HealthService
from streamprint.api.interceptor import MetricsInterceptor
from streamprint.api.peers import Peers
from streamprint.api.servicer import AdminService, FingerprintService
from streamprint.api.status import abort
from streamprint.api.wire import (
    MalformedRequest,
    parse_batch_fingerprint_request,
    parse_fingerprint_request,
    stream_request_parser,
    tolerant,
)
from streamprint.config import ServerConfig
from streamprint.dataplane import DataPlane, Engine
from streamprint.errors import StreamprintError
from streamprint.gc_tuning import freeze_startup_objects
from streamprint.metrics import MetricsServer
from streamprint.workers.ledger import SharedLedger
from streamprint.workers.role import WorkerRole

if TYPE_CHECKING:
    from streamprint.runtime.video_select import VideoSelection

log = logging.getLogger("streamprint.server")

FINGERPRINT_SERVICE = fs_pb.DESCRIPTOR.services_by_name["FingerprintService"].full_name
ADMIN_SERVICE = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class StartupRefusedError(StreamprintError):
    """The config must not start: TLS or token files unusable, or insecure on a public host."""

    reason = "STARTUP_REFUSED"


def _read_pem(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise StartupRefusedError(f"cannot read {flag} {path!r}: {exc.strerror}") from None


Handlers = dict[str, "grpc.RpcMethodHandler[Any, Any]"]


def _generated_handlers(add_to_server: Callable[[Any, Any], None], servicer: object) -> Handlers:
    """The method handlers a generated ``add_*Servicer_to_server`` would register."""
    handlers: Handlers = {}

    class Collect:
        def add_generic_rpc_handlers(self, _: object) -> None:
            pass

        def add_registered_method_handlers(self, _: str, methods: Handlers) -> None:
            handlers.update(methods)

    add_to_server(servicer, Collect())
    return handlers


def _guarded(handler: grpc.RpcMethodHandler[Any, Any], type_name: str) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` whose request deserializer returns :class:`MalformedRequest` for bytes that
    do not parse, and whose unary-request behaviour ends such a call INVALID_ARGUMENT with the
    usual details (without this, gRPC ends it UNKNOWN and logs a traceback). A streaming
    request's handler checks what ``context.read()`` returns itself."""
    assert handler.request_deserializer is not None, type_name
    deserializer = tolerant(handler.request_deserializer, type_name)
    serializer = handler.response_serializer
    if handler.request_streaming:
        assert handler.stream_stream is not None, f"{type_name}: only bidi streams are served"
        return grpc.stream_stream_rpc_method_handler(
            handler.stream_stream, request_deserializer=deserializer, response_serializer=serializer
        )
    behaviour = handler.unary_stream if handler.response_streaming else handler.unary_unary
    assert inspect.iscoroutinefunction(behaviour), f"{type_name}: a coroutine handler expected"

    async def refuse_malformed(request: object, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, MalformedRequest):
            await abort(context, request.error())
        return await behaviour(request, context)

    make = (
        grpc.unary_stream_rpc_method_handler
        if handler.response_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return make(refuse_malformed, request_deserializer=deserializer, response_serializer=serializer)


def _add_service(server: grpc.aio.Server, name: str, handlers: Handlers, descriptor: Any) -> None:
    """Register ``handlers`` of service ``name``, each :func:`_guarded`."""
    guarded = {
        method: _guarded(handler, descriptor.methods_by_name[method].input_type.full_name)
        for method, handler in handlers.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, guarded),))
    server.add_registered_method_handlers(name, guarded)


def add_fingerprint_service(servicer: FingerprintService, server: grpc.aio.Server) -> None:
    """The generated registration of the service, except that ``Fingerprint``'s and
    ``BatchFingerprint``'s requests are read by :mod:`streamprint.api.wire`: their media bytes
    stay in the buffer gRPC received them in (no two further copies of up to 32 MB each), and
    a stream's chunk over ``--max-chunk-bytes`` is refused unparsed
    (:func:`~streamprint.api.wire.stream_request_parser`).
    Every request that does not parse ends INVALID_ARGUMENT (:func:`_guarded`)."""
    handlers = _generated_handlers(fs_grpc.add_FingerprintServiceServicer_to_server, servicer)
    handlers["StreamFingerprint"] = grpc.stream_stream_rpc_method_handler(
        servicer.StreamFingerprint,
        request_deserializer=stream_request_parser(servicer.max_chunk_bytes),
        response_serializer=fs_pb.StreamFingerprintResponse.SerializeToString,
    )
    handlers["Fingerprint"] = grpc.unary_unary_rpc_method_handler(
        servicer.Fingerprint,
        request_deserializer=parse_fingerprint_request,
        response_serializer=fs_pb.FingerprintResponse.SerializeToString,
    )
    handlers["BatchFingerprint"] = grpc.unary_unary_rpc_method_handler(
        servicer.BatchFingerprint,
        request_deserializer=parse_batch_fingerprint_request,
        response_serializer=fs_pb.BatchFingerprintResponse.SerializeToString,
    )
    service = fs_pb.DESCRIPTOR.services_by_name["FingerprintService"]
    _add_service(server, FINGERPRINT_SERVICE, handlers, service)


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS (and, with ``--tls-client-ca``, mutual TLS) credentials; ``None`` without TLS."""
    if not config.tls:
        return None
    cert = _read_pem(config.tls_cert, "--tls-cert")
    key = _read_pem(config.tls_key, "--tls-key")
    client_ca = _read_pem(config.tls_client_ca, "--tls-client-ca") if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def load_tokens(config: ServerConfig) -> TokenTable | None:
    """The ``--auth-tokens`` table (``None``: no token auth)."""
    if not config.auth_tokens:
        return None
    try:
        return TokenTable.load(config.auth_tokens)
    except TokenFileError as exc:
        raise StartupRefusedError(str(exc)) from None


def grpc_options(config: ServerConfig, *, reuse_port: bool = False) -> list[tuple[str, Any]]:
    """Channel arguments of the server (``reuse_port``: a worker sharing the port)."""
    keepalive_ms = int(config.keepalive_s * 1000)
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # Never share a port silently with another process (and make port 0 unique in tests);
        # only the workers of one `serve --workers N` share theirs, on purpose.
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        # Ping idle connections so vanished clients are noticed and their calls cancelled.
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", min(20_000, keepalive_ms)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ]


class StreamprintServer:
    """The server: ``await start()``, then ``await stop()`` (or use :func:`serve`)."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        engine: Engine | None = None,
        video: VideoSelection | None = None,
        role: WorkerRole | None = None,
    ) -> None:
        """``role``: this process is one of several workers sharing the port."""
        self.config = config
        self._engine = engine
        self._video = video
        self.role = role
        self.peers: Peers | None = None
        self.plane: DataPlane | None = None
        self._purging: asyncio.Future[None] | None = None
        self.health: HealthService | None = None
        self.metrics: MetricsServer | None = None
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self._stopped = asyncio.Event()

    @property
    def address(self) -> str:
        """``host:port`` the server listens on (after :meth:`start`)."""
        host = self.config.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    async def start(self) -> int:
        """Bind, start serving, and return the bound port."""
        config = self.config
        problems = config.security_problems()
        if problems:
            raise StartupRefusedError("; ".join(problems))
        credentials = server_credentials(config)
        tokens = load_tokens(config)
        role = self.role
        if role is None:
            plane = DataPlane(config, self._engine, video=self._video)
            peers = None
        else:
            ledger = SharedLedger(
                role.ledger_path, workers=role.count, owners=role.owners, row=role.index
            )
            plane = DataPlane(
                config, self._engine, video=self._video, ledger=ledger,
                session_prefix=role.session_prefix, audio_choice=role.audio_choice,
            )
            peers = Peers(
                role, max_message_bytes=config.max_message_bytes, retry_after_s=config.retry_after_s
            )
        interceptors: list[grpc.aio.ServerInterceptor] = [MetricsInterceptor(plane.metrics)]
        if tokens is not None:
            interceptors.append(AuthInterceptor(tokens))
        server = grpc.aio.server(
            options=grpc_options(config, reuse_port=role is not None), interceptors=interceptors
        )
        add_fingerprint_service(FingerprintService(plane, tokens, peers), server)
        services = [FINGERPRINT_SERVICE]
        if config.admin:
            admin = _generated_handlers(
                admin_service_pb2_grpc.add_AdminServiceServicer_to_server, AdminService(plane, peers)
            )
            admin_service = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
            _add_service(server, ADMIN_SERVICE, admin, admin_service)
            services.append(ADMIN_SERVICE)
        health = HealthService(tuple(services))
        health_handlers = _generated_handlers(health_pb2_grpc.add_HealthServicer_to_server, health)
        _add_service(server, HEALTH_SERVICE, health_handlers, health_pb2.DESCRIPTOR.services_by_name["Health"])
        services.append(HEALTH_SERVICE)
        if config.reflection:
            reflection.enable_server_reflection((*services, reflection.SERVICE_NAME), server)
        if credentials is not None:
            port = server.add_secure_port(config.address, credentials)
        else:
            port = server.add_insecure_port(config.address)
        if port == 0:  # pragma: no cover - older grpcio returned 0 instead of raising
            raise OSError(f"cannot listen on {config.address}")
        if role is not None:
            server.add_insecure_port(f"unix:{role.peer_socket(role.index)}")
        await server.start()
        self.plane, self.health, self._server, self.port = plane, health, server, port
        self.peers = peers
        self._purging = asyncio.ensure_future(plane.purge_expired_periodically())
        if role is not None and config.metrics_port is not None:
            self.metrics = MetricsServer(plane, unix_path=str(role.metrics_socket(role.index)))
            await self.metrics.start()
        elif config.metrics_port is not None:
            self.metrics = MetricsServer(plane, host=config.host, port=config.metrics_port)
            await self.metrics.start()
        if role is not None:
            log.info(
                "worker %d of %d (pid %d) accepting on %s",
                role.index,
                role.count,
                os.getpid(),
                self.address,
            )
            return port
        log.info(
            "streamprint serving on %s (%s, %s, streams %d, engine threads %d, batching %s, "
            "reflection %s, admin %s%s)",
            self.address,
            ("mutual TLS" if config.tls_client_ca else "TLS") if config.tls else "plaintext",
            f"{len(tokens)} auth tokens" if tokens is not None else "no auth",
            config.max_streams,
            config.effective_engine_threads,
            f"<= {config.batch_max_frames} frames / {config.batch_max_wait_ms:g} ms"
            if plane.batcher is not None
            else "off",
            "on" if config.reflection else "off",
            "on" if config.admin else "off",
            f", metrics on :{self.metrics.port}" if self.metrics else "",
        )
        return port

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain and stop: NOT_SERVING, streams finish early, then stop within the grace."""
        if self._server is None or self.plane is None or self.health is None:
            return
        grace = self.config.grace_s if grace_s is None else grace_s
        log.info("draining (grace %.1f s, %d live streams)", grace, self.plane.active_streams)
        self.health.enter_graceful_shutdown()
        self.plane.start_draining()
        await self._server.stop(grace)
        if self._purging is not None:
            self._purging.cancel()
        self.plane.close()
        if self.peers is not None:
            await self.peers.close()
        if self.metrics is not None:
            await self.metrics.stop()
        self._server = None
        self._stopped.set()
        log.info("stopped")

    async def wait_stopped(self) -> None:
        """Return once :meth:`stop` has completed."""
        await self._stopped.wait()


async def serve(
    config: ServerConfig,
    *,
    engine: Engine | None = None,
    role: WorkerRole | None = None,
    started: Callable[[int], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT, then shut down gracefully; returns the exit code (0).

    A worker (``role`` set) calls ``started(port)`` once it accepts calls, and drains by
    itself if its supervisor disappears.
    """
    # this process's malloc, before the engine allocates, and its periodic trim (streamprint.allocator)
    tuned = tune_allocator()
    server = StreamprintServer(config, engine=engine, role=role)
    await server.start()
    freeze_startup_objects()  # shorter full GC passes from now on (streamprint.gc_tuning)
    loop = asyncio.get_running_loop()
    trimmer = asyncio.ensure_future(trim_periodically()) if tuned else None
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    orphan_watch = (
        asyncio.ensure_future(_watch_parent(role.parent_pid, stop)) if role is not None else None
    )
    if started is not None:
        started(server.port)
    try:
        await stop.wait()
    finally:
        orphaned = orphan_watch is not None and orphan_watch.done()
        for task in (orphan_watch, trimmer):
            if task is not None:
                task.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
            if role is not None:  # the supervisor forwards what the terminal sent us too
                signal.signal(sig, signal.SIG_IGN)
        await server.stop()
        if orphaned and role is not None:
            # the supervisor died without its cleanup (SIGKILL): the workers, all draining
            # now, remove its run directory (sockets, ledger) instead; whichever is last wins
            shutil.rmtree(role.run_dir, ignore_errors=True)
    return 0


async def _watch_parent(parent_pid: int, stop: asyncio.Event, period_s: float = 1.0) -> None:
    """Set ``stop`` once the supervisor ``parent_pid`` is gone (a worker never outlives it)."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(period_s)
    log.warning("the supervisor (pid %d) is gone; draining", parent_pid)
    stop.set()
