"""gRPC health checking (grpc.health.v1.Health: Check, List, Watch) that knows about draining.

Like grpc_health's reference servicer, but Watch streams end by themselves once the server
is shutting down (after sending NOT_SERVING), so health watchers never hold a graceful
shutdown open until its grace period runs out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from streamprint.api.status import abort
from streamprint.errors import NotFoundError

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthService:
    """Per-service serving status; ``""`` is the whole server."""

    def __init__(self, services: tuple[str, ...] = ()) -> None:
        self._status: dict[str, int] = {name: SERVING for name in ("", *services)}
        self._changed = asyncio.Event()
        self._shutting_down = False

    def _bump(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def set(self, service: str, serving: bool) -> None:
        """Mark ``service`` SERVING or NOT_SERVING (ignored once shutting down)."""
        if self._shutting_down:
            return
        self._status[service] = SERVING if serving else NOT_SERVING
        self._bump()

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING, for good; Watch streams send it and end."""
        self._shutting_down = True
        for service in self._status:
            self._status[service] = NOT_SERVING
        self._bump()

    def status(self, service: str = "") -> int:
        """The current status of ``service`` (SERVICE_UNKNOWN if unknown)."""
        return int(self._status.get(service, SERVICE_UNKNOWN))

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        """The status now; NOT_FOUND for an unknown service."""
        current = self._status.get(request.service)
        if current is None:
            await abort(context, NotFoundError(f"unknown service {request.service!r}"))
        return health_pb2.HealthCheckResponse(status=current)

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthListResponse:
        """Every known service and its status."""
        response = health_pb2.HealthListResponse()
        for service, current in self._status.items():
            response.statuses[service].status = current
        return response

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """Send the status now and on every change; end after NOT_SERVING when shutting down."""
        last: int | None = None
        while True:
            changed = self._changed
            current = self.status(request.service)
            if current != last:
                await context.write(health_pb2.HealthCheckResponse(status=current))
                last = current
            if self._shutting_down:
                return
            await changed.wait()
