"""What a worker process is told by its supervisor, and the session ids that name a worker."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: ``w<index>-<32 hex>``: the session ids of a worker (single-process servers use bare hex).
_SESSION_RE = re.compile(r"^w(\d{1,4})-[0-9a-f]{32}$")


@dataclass(frozen=True)
class WorkerRole:
    """One worker's place among ``count`` workers sharing a port.

    ``run_dir`` is the supervisor's private directory (mode 0700): the shared stream ledger
    and every worker's unix sockets live there. ``owners`` are the auth-token ids (never
    tokens) the ledger keeps a per-token count for, in ledger column order.
    ``audio_choice`` is the supervisor's ``--backend auto`` measurement
    (``Selection.to_json_dict()``), the same for every worker; ``None`` when the backend is
    explicit or the measurement failed (each worker then selects for itself).
    """

    index: int
    count: int
    run_dir: str
    parent_pid: int
    owners: tuple[str, ...] = ()
    audio_choice: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def ledger_path(self) -> Path:
        """The shared stream ledger file."""
        return Path(self.run_dir) / "streams.ledger"

    def peer_socket(self, index: int) -> Path:
        """Unix socket of worker ``index``'s private gRPC port (forwarded validations, admin)."""
        return Path(self.run_dir) / f"worker-{index}.sock"

    def metrics_socket(self, index: int) -> Path:
        """Unix socket of worker ``index``'s ``GET /metrics`` (read by the supervisor)."""
        return Path(self.run_dir) / f"metrics-{index}.sock"

    @property
    def session_prefix(self) -> str:
        """Prefix of this worker's session ids."""
        return f"w{self.index}-"


def owner_of_session(session_id: str) -> int | None:
    """The worker index a session id names (``None``: not a worker's id, e.g. bare hex)."""
    match = _SESSION_RE.match(session_id)
    return int(match.group(1)) if match else None
