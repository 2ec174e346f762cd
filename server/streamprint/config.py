"""Server configuration: one frozen dataclass, built once from CLI flags and environment.

Every field ``foo_bar`` is settable as the flag ``--foo-bar`` and as the environment variable
``STREAMPRINT_FOO_BAR``; a flag beats the environment, which beats the default. Sizes accept
``KiB``/``MiB``/``GiB`` (and ``K``/``M``/``G``) suffixes, booleans ``1/0/true/false/yes/no/on/off``.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streamprint.errors import InvalidInputError

ENV_PREFIX = "STREAMPRINT_"

Kind = Literal[
    "str", "int", "float", "bytes", "bool", "port", "optional_port", "choice", "workers"
]

_KIB = 1024
_MIB = 1024 * 1024


def _opt(
    default: Any,
    help: str,
    kind: Kind,
    *,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
) -> Any:
    return field(
        default=default,
        metadata={"help": help, "kind": kind, "choices": choices, "minimum": minimum},
    )


def default_workers() -> int:
    """The CPUs this process may use: engine threads when ``--engine-threads`` is 0, and
    server processes for ``--workers auto``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``streamprint serve`` can be told. Build it with :meth:`from_sources`."""

    host: str = _opt("127.0.0.1", "address to listen on", "str")
    port: int = _opt(50051, "port to listen on (0: any free port)", "port")
    workers: int = _opt(
        1,
        "server processes sharing the port (SO_REUSEPORT; 1: one process, no supervisor; "
        "auto or 0: one per CPU)",
        "workers",
        minimum=0,
    )
    engine_threads: int = _opt(
        0,
        "threads for CPU-bound engine work in each server process (0: one per CPU)",
        "int",
        minimum=0,
    )
    whole_media_threads: int = _opt(
        0,
        "worker threads (per server process, shared by all requests) over which a whole-media "
        "25D pass (unary, batch, validation) spreads its frame analysis and loudness filter, "
        "overlapped with the rest of the pass; same results (0: one per CPU)",
        "int",
        minimum=0,
    )
    backend: str = _opt(
        "auto",
        "runtime backend for the per-frame work",
        "choice",
        choices=("auto", "numpy", "onnxruntime", "openvino"),
    )
    precision: str = _opt(
        "auto",
        "model precision (auto: the best that passes the accuracy gate)",
        "choice",
        choices=("auto", "fp32", "int8"),
    )
    batching: bool = _opt(
        False,
        "dynamic batching: live streams' frames share analyzer calls (off by default: no "
        "measurable gain with the spectral model, and results then depend on the batch in "
        "the last float bits; docs/runtime.md)",
        "bool",
    )
    batch_max_frames: int = _opt(
        256, "dynamic batching: most frames in one shared analyzer call (0: no batching)",
        "int", minimum=0,
    )
    batch_max_wait_ms: float = _opt(
        2.0,
        "dynamic batching: most milliseconds a stream's frames wait for others to join their "
        "batch (0: no batching)",
        "float",
        minimum=0.0,
    )
    heads: str = _opt(
        "auto",
        "harmonic_ratio / pitch_stability by learned heads or HPSS + YIN "
        "(auto: learned when the heads passed their accuracy gate)",
        "choice",
        choices=("auto", "learned", "dsp"),
    )
    max_message_bytes: int = _opt(
        64 * _MIB, "largest gRPC message received or sent", "bytes", minimum=4 * _KIB
    )
    max_chunk_bytes: int = _opt(4 * _MIB, "largest MediaChunk.data of a stream", "bytes", minimum=1)
    max_streams: int = _opt(
        512, "streams served at once (more: RESOURCE_EXHAUSTED + RetryInfo)", "int", minimum=1
    )
    max_requests: int = _opt(
        32,
        "unary/batch calls worked on at once (more: RESOURCE_EXHAUSTED + RetryInfo)",
        "int",
        minimum=1,
    )
    max_buffered_bytes: int = _opt(
        8 * _MIB,
        "input bytes one session may hold that have not decoded into audio yet",
        "bytes",
        minimum=1,
    )
    idle_timeout_s: float = _opt(
        30.0, "end a stream that sends no media (or reads no update) for this long", "float", minimum=0.001
    )
    max_media_s: float = _opt(
        4 * 3600.0, "most media seconds one stream or request may carry", "float", minimum=0.001
    )
    max_session_duration_s: float = _opt(
        6 * 3600.0, "longest wall-clock duration of one stream", "float", minimum=0.001
    )
    max_batch_items: int = _opt(64, "most items in one batch or validation call", "int", minimum=1)
    cache_max_entries: int = _opt(4096, "fingerprint cache: most entries", "int", minimum=1)
    cache_max_bytes: int = _opt(64 * _MIB, "fingerprint cache: most bytes", "bytes", minimum=1)
    cache_ttl_s: float = _opt(
        3600.0, "fingerprint cache: time to live of an entry", "float", minimum=0.001
    )
    session_store_max_entries: int = _opt(
        1024, "finished-session media store: most sessions", "int", minimum=1
    )
    session_store_max_bytes: int = _opt(
        512 * _MIB, "finished-session media store: most bytes", "bytes", minimum=1
    )
    session_store_ttl_s: float = _opt(
        900.0, "finished-session media store: how long a session is kept", "float", minimum=0.001
    )
    session_retain_max_bytes: int = _opt(
        128 * _MIB,
        "largest decoded media of one session kept for validation (0: keep none)",
        "bytes",
        minimum=0,
    )
    validation_prefetch: bool = _opt(
        False,
        "compute a finished session's validation reference (its own dimensions) in the "
        "background as soon as the stream ends (one batch pass per kept session; a later "
        "ValidateFingerprints of its own values is then a cache hit)",
        "bool",
    )
    session_spool_after_bytes: int = _opt(
        192 * _KIB,
        "kept media of one session held in memory; the rest goes to an anonymous temporary "
        "file (deleted when the session leaves the store)",
        "bytes",
        minimum=0,
    )
    session_spool_dir: str = _opt(
        "", "directory for the temporary files of kept media (empty: the system's temp dir)", "str"
    )
    grace_s: float = _opt(
        8.0,
        "on SIGTERM: time live calls get to finish (streams get their final update)",
        "float",
        minimum=0.0,
    )
    retry_after_s: float = _opt(
        1.0, "RetryInfo delay suggested when the server is full", "float", minimum=0.0
    )
    keepalive_s: float = _opt(
        30.0,
        "interval of HTTP/2 keepalive pings that detect vanished clients",
        "float",
        minimum=1.0,
    )
    max_streams_per_token: int = _opt(
        0,
        "streams one auth token may hold open at once (more: RESOURCE_EXHAUSTED + RetryInfo; "
        "0: no per-token quota)",
        "int",
        minimum=0,
    )
    max_chunk_rate: float = _opt(
        0.0,
        "chunks per second one stream may send, sustained (bursts of 2 s allowed; more: "
        "RESOURCE_EXHAUSTED + RetryInfo; 0: no limit)",
        "float",
        minimum=0.0,
    )
    tls_cert: str = _opt("", "PEM certificate chain of the server (with --tls-key: TLS)", "str")
    tls_key: str = _opt("", "PEM private key of --tls-cert", "str")
    tls_client_ca: str = _opt(
        "", "PEM CA bundle client certificates must chain to (mutual TLS; needs --tls-cert)", "str"
    )
    auth_tokens: str = _opt(
        "",
        "file of lines 'TOKEN ROLE' (role user or admin); every RPC but health and reflection "
        "then needs 'authorization: Bearer TOKEN'",
        "str",
    )
    insecure: bool = _opt(
        False, "allow a non-loopback --host without TLS and tokens (never in production)", "bool"
    )
    media_root: str = _opt(
        "", "directory MediaSource.server_path is resolved in (empty: paths refused)", "str"
    )
    reflection: bool = _opt(True, "serve gRPC server reflection", "bool")
    admin: bool = _opt(True, "serve streamprint.v1.AdminService (cache stats and clear)", "bool")
    metrics_port: int | None = _opt(
        None,
        "serve Prometheus metrics on this port (unset: no metrics; 0: any free port)",
        "optional_port",
    )
    log_level: str = _opt(
        "info", "log level", "choice", choices=("debug", "info", "warning", "error")
    )
    log_format: str = _opt(
        "text",
        "log line format on stderr: text, or json (one object per line, with session ids)",
        "choice",
        choices=("text", "json"),
    )

    @property
    def max_chunk_burst(self) -> float:
        """Chunks a stream may send at once above ``--max-chunk-rate``: 2 s of it, at least 1.

        The size of the per-stream token bucket; 0 when there is no chunk rate limit.
        """
        rate = self.max_chunk_rate
        return max(1.0, 2.0 * rate) if rate > 0 else 0.0

    @property
    def effective_workers(self) -> int:
        """Server processes actually started (``--workers auto``/0: one per CPU)."""
        return self.workers or default_workers()

    @property
    def effective_engine_threads(self) -> int:
        """Engine threads actually used by each server process."""
        return self.engine_threads or default_workers()

    @property
    def batching_enabled(self) -> bool:
        """Whether live streams' frames are batched (``--batching`` and both limits > 0)."""
        return self.batching and self.batch_max_frames > 0 and self.batch_max_wait_ms > 0

    @property
    def stream_threads(self) -> int:
        """Threads of the stream worker pool.

        ``effective_engine_threads``, plus, with batching, one thread per 32 frames of
        ``--batch-max-frames``: a stream waiting for its batch holds its thread, and a batch
        can only gather requests of streams that hold one (waiting threads use no CPU).
        """
        extra = -(-self.batch_max_frames // 32) if self.batching_enabled else 0
        return self.effective_engine_threads + extra

    @property
    def address(self) -> str:
        """``host:port`` to bind (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    @property
    def tls(self) -> bool:
        """Whether the server listens with TLS."""
        return bool(self.tls_cert or self.tls_key)

    def security_problems(self) -> list[str]:
        """Why this config must not start (empty: it may).

        TLS needs both a certificate and a key, mutual TLS needs TLS, and a non-loopback
        ``--host`` needs TLS and tokens unless ``--insecure`` is given.
        """
        problems: list[str] = []
        if bool(self.tls_cert) != bool(self.tls_key):
            problems.append("--tls-cert and --tls-key go together (give both or neither)")
        if self.tls_client_ca and not self.tls:
            problems.append("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        if not self.insecure and not is_loopback(self.host):
            missing = [
                what
                for what, ok in (
                    ("TLS (--tls-cert/--tls-key)", self.tls),
                    ("tokens (--auth-tokens)", bool(self.auth_tokens)),
                )
                if not ok
            ]
            if missing:
                problems.append(
                    f"refusing to listen on the non-loopback address {self.host!r} without "
                    f"{' and '.join(missing)}; give them, listen on 127.0.0.1, or pass "
                    "--insecure (STREAMPRINT_INSECURE=1) to accept the risk"
                )
        return problems

    def to_json_dict(self) -> dict[str, object]:
        """Every field, JSON-ready."""
        return dataclasses.asdict(self)

    # ----------------------------------------------------------------------------- building

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one flag per field; unset flags stay ``None`` so the environment can fill them."""
        for f in dataclasses.fields(cls):
            meta = f.metadata
            flag = option_flag(f.name)
            help_text = f"{meta['help']} [env {env_name(f.name)}; default {_show(f.default)}]"
            if meta["kind"] == "bool":
                parser.add_argument(
                    flag,
                    dest=f.name,
                    action=argparse.BooleanOptionalAction,
                    default=None,
                    help=help_text,
                )
            elif meta["kind"] == "choice":
                parser.add_argument(
                    flag, dest=f.name, choices=meta["choices"], default=None, help=help_text
                )
            else:
                parser.add_argument(
                    flag, dest=f.name, default=None, metavar=f.name.upper(), help=help_text
                )

    @classmethod
    def from_sources(
        cls,
        flags: Mapping[str, object] | argparse.Namespace | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ServerConfig:
        """Build the config: flags (``None`` = not given) beat ``STREAMPRINT_*`` env, which beats defaults.

        Raises :class:`~streamprint.errors.InvalidInputError` naming the flag and env variable of
        every bad value.
        """
        given: Mapping[str, object]
        if flags is None:
            given = {}
        elif isinstance(flags, argparse.Namespace):
            given = vars(flags)
        else:
            given = flags
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        violations: list[InvalidInputError] = []
        for f in dataclasses.fields(cls):
            raw: object = given.get(f.name)
            source = option_flag(f.name)
            if raw is None and env_name(f.name) in env:
                raw = env[env_name(f.name)]
                source = env_name(f.name)
            if raw is None:
                continue
            try:
                values[f.name] = _parse(raw, f.metadata, source)
            except InvalidInputError as exc:
                violations.append(exc)
        if violations:
            raise InvalidInputError(
                "; ".join(v.message for v in violations),
                [fv for v in violations for fv in v.violations],
            )
        return cls(**values)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost``, 127/8, ::1)."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name or a wildcard: assume it is reachable from outside


def option_flag(name: str) -> str:
    """``--foo-bar`` for the field ``foo_bar``."""
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    """``STREAMPRINT_FOO_BAR`` for the field ``foo_bar``."""
    return ENV_PREFIX + name.upper()


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    return str(value)


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": _KIB, "m": _MIB, "g": 1024 * _MIB, "t": 1024 * 1024 * _MIB}


def parse_bytes(text: str) -> int:
    """``"64MiB"`` → 67108864; plain integers are bytes. Binary (1024-based) factors."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, unit, _ = match.groups()
    return int(float(number) * _SIZE_FACTORS[unit.lower()])


def _parse(raw: object, meta: Mapping[str, Any], source: str) -> object:
    kind: Kind = meta["kind"]
    text = str(raw).strip()

    def bad(description: str, allowed: str = "") -> InvalidInputError:
        return InvalidInputError.for_field(source, description, allowed)

    try:
        value: object
        if kind == "str":
            value = str(raw)
        elif kind == "choice":
            if text not in meta["choices"]:
                raise bad(f"unknown value {text!r}", ", ".join(meta["choices"]))
            value = text
        elif kind == "bool":
            if isinstance(raw, bool):
                value = raw
            elif text.lower() in ("1", "true", "yes", "on"):
                value = True
            elif text.lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise bad(f"not a boolean: {text!r}", "1, 0, true, false, yes, no, on, off")
        elif kind in ("port", "optional_port"):
            if kind == "optional_port" and text == "":
                return None
            value = int(text)
            if not 0 <= value <= 65535:
                raise bad(f"port {value} out of range", "0-65535")
        elif kind == "int":
            value = int(text)
        elif kind == "workers":
            if text.lower() != "auto" and not text.isdigit():
                raise bad(f"not a number of processes: {text!r}", "a whole number, or auto")
            value = 0 if text.lower() == "auto" else int(text)
        elif kind == "bytes":
            value = parse_bytes(text)
        else:
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise bad(f"not a finite number: {text!r}")
    except ValueError as exc:
        raise bad(f"cannot parse {text!r}: {exc}") from None
    minimum = meta.get("minimum")
    if minimum is not None and isinstance(value, int | float) and value < minimum:
        raise bad(f"{value} is below the minimum", f">= {minimum:g}")
    return value
