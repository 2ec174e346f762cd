"""Several server processes on one port: roles, the shared stream ledger, the supervisor.

``streamprint serve --workers N`` (N > 1) runs a supervisor process that starts N worker
processes; each worker is a full :class:`~streamprint.api.server.StreamprintServer` bound to
the same address with ``SO_REUSEPORT``, so the kernel spreads incoming connections over
them. See docs/architecture.md ("Several server processes") for the design. Nothing here
imports gRPC.
"""

from streamprint.workers.ledger import LocalLedger, SharedLedger, StreamLedger
from streamprint.workers.role import WorkerRole, owner_of_session

__all__ = ["LocalLedger", "SharedLedger", "StreamLedger", "WorkerRole", "owner_of_session"]
