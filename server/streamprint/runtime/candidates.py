"""What the audio and the video selection share: the candidate record, the selection
record, and the walk over ``--backend`` x ``--precision`` that skips what cannot run.

The audio selection (:mod:`streamprint.runtime.select`) times every candidate it loads;
the video selection (:mod:`streamprint.runtime.video_select`) ranks by the manifest's
speed and loads lazily. Both first walk the same way through the backends
(:meth:`Survey.variants`): a backend that is not installed, a precision it does not run,
a variant the manifest lacks or whose accuracy gate failed is recorded as a candidate with
its reason (or, when it was asked for explicitly, raises or runs with a warning). What
differs, the speed field of a candidate and how the winner is found, stays in each module.
Both keep their selections in a :class:`SelectionCache`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

from streamprint.errors import InvalidInputError, ModelError
from streamprint.runtime.base import BACKEND_NAMES, LoadOptions
from streamprint.runtime.manifest import ModelManifest, default_models_dir

#: What ``--backend`` accepts.
BACKEND_CHOICES = ("auto", *BACKEND_NAMES)
#: What ``--precision`` accepts.
PRECISION_CHOICES = ("auto", "fp32", "int8")


@dataclass(frozen=True)
class BaseCandidate:
    """What a selection found about one backend x precision, less its speed.

    ``status``: ``chosen``, ``slower``, ``heavier`` (as fast, within the tie margin, but a
    heavier runtime), ``gate-failed``, ``unmeasured``, ``unavailable``, ``check-failed`` or
    ``not-built`` (``ready`` while the audio selection still times);
    ``detail`` explains the status; ``device`` is empty until the variant was loaded.
    Subclasses add one speed field and say how it goes into JSON (:meth:`speed_json`).
    """

    backend: str
    precision: str
    status: str
    detail: str = ""
    device: str = ""

    @property
    def label(self) -> str:
        """``backend/precision``, as reasons and warnings name it."""
        return f"{self.backend}/{self.precision}"

    def speed_json(self) -> dict[str, object]:
        """The speed field(s) of :meth:`to_json_dict` (none here)."""
        return {}

    def to_json_dict(self) -> dict[str, object]:
        return {
            "backend": self.backend, "precision": self.precision, "status": self.status,
            "detail": self.detail, "device": self.device, **self.speed_json(),
        }


class Identified(Protocol):
    """What a selection reads of its analyzer (audio and video analyzers both have it)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def precision(self) -> str: ...
    @property
    def device(self) -> str: ...


A = TypeVar("A", bound=Identified)
C = TypeVar("C", bound=BaseCandidate)
S = TypeVar("S")


@dataclass(frozen=True)
class BaseSelection(Generic[A, C]):
    """The analyzer that runs, what was asked, and why this one (``reason``)."""

    analyzer: A
    requested_backend: str
    requested_precision: str
    reason: str
    candidates: tuple[C, ...] = field(default_factory=tuple)

    @property
    def backend(self) -> str:
        return self.analyzer.backend

    @property
    def precision(self) -> str:
        return self.analyzer.precision

    @property
    def device(self) -> str:
        return self.analyzer.device

    @property
    def model(self) -> str:
        """Model id of what it computes."""
        return self.analyzer.name

    @property
    def model_version(self) -> str:
        """Version of :attr:`model`."""
        return self.analyzer.version

    def extra_json(self) -> dict[str, object]:
        """Keys a subclass adds to :meth:`to_json_dict`, before ``candidates``."""
        return {}

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready description (for logs, GetServerInfo, benchmarks)."""
        return {
            "backend": self.backend, "precision": self.precision, "device": self.device,
            "model": self.model, "model_version": self.model_version,
            "requested_backend": self.requested_backend,
            "requested_precision": self.requested_precision, "reason": self.reason,
            **self.extra_json(),
            "candidates": [c.to_json_dict() for c in self.candidates],
        }


def resolved_options(options: LoadOptions | None) -> LoadOptions:
    """``options`` with ``models_dir`` filled in now ($STREAMPRINT_MODELS_DIR may change
    between calls, and the options are part of the selection caches' keys)."""
    opts = options or LoadOptions()
    if opts.models_dir is None:
        opts = replace(opts, models_dir=default_models_dir())
    return opts


class SelectionCache(Generic[S]):
    """Selections made once per request (a server's engines share them); thread-safe."""

    def __init__(self) -> None:
        self._items: dict[Hashable, S] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], S], *, cached: bool = True) -> S:
        """The selection of ``key``, made by ``make()`` under the lock when not cached yet
        (``cached=False``: always made anew, and not kept)."""
        with self._lock:
            if cached and key in self._items:
                return self._items[key]
            value = make()
            if cached:
                self._items[key] = value
            return value

    def clear(self) -> None:
        """Forget every selection (tests)."""
        with self._lock:
            self._items.clear()


def check_request(backend: str, precision: str) -> None:
    """:class:`InvalidInputError` unless ``backend`` / ``precision`` are known choices."""
    if backend not in BACKEND_CHOICES:
        raise InvalidInputError.for_field("backend", f"unknown backend {backend!r}", ", ".join(BACKEND_CHOICES))
    if precision not in PRECISION_CHOICES:
        raise InvalidInputError.for_field(
            "precision", f"unknown precision {precision!r}", ", ".join(PRECISION_CHOICES)
        )


def gate_problem(
    manifest: ModelManifest, backend: str, precision: str, measure: str,
) -> tuple[str, str] | None:
    """``None`` when ``manifest`` says the variant passed its accuracy gate, else
    ``(status, detail)``; ``measure`` is the command that measures the gate."""
    key = f"{backend}/{precision}"
    variant = manifest.variants.get(key)
    if variant is None:
        return "not-built", f"model {manifest.model_id} has no {key} variant (run `make models`)"
    if variant.gate is None:
        return "unmeasured", f"its accuracy gate was never measured (run {measure})"
    if not variant.gate.passed:
        return "gate-failed", f"its accuracy gate failed: {variant.gate.reason}"
    return None


@dataclass
class Survey(Generic[C]):
    """The running record of one selection: the candidates in the order met, and warnings.

    ``make`` builds a candidate from ``(backend, precision, status, detail)``.
    """

    backend: str
    precision: str
    make: type[C]
    reports: list[C] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def explicit_backend(self) -> bool:
        return self.backend != "auto"

    @property
    def explicit_precision(self) -> bool:
        return self.precision != "auto"

    @property
    def asked(self) -> str:
        return f"--backend {self.backend} --precision {self.precision}"

    def names(self, all_names: Sequence[str]) -> tuple[str, ...]:
        """The backends to walk: the one asked for, or all of ``all_names``."""
        return (self.backend,) if self.explicit_backend else tuple(all_names)

    def asked_anyway(self, backend: str, precision: str, detail: str) -> None:
        """Warn that an explicitly asked-for variant runs although ``detail``."""
        self.warnings.append(f"{backend}/{precision} was asked for although {detail}")

    def variants(
        self,
        names: Sequence[str],
        unavailable: Callable[[str], str | None],
        precisions: Callable[[str], tuple[str, ...]],
        gate: Callable[[str, str], tuple[str, str] | None],
    ) -> Iterator[tuple[str, str]]:
        """The ``(backend, precision)`` pairs that may run, in order; the rest are recorded.

        ``unavailable(backend)`` says why a backend cannot run (``None``: it can);
        ``precisions(backend)`` what it runs; ``gate(backend, precision)`` the
        manifest's verdict (:func:`gate_problem`; not asked of the numpy reference).
        Raises :class:`ModelError` when what was explicitly asked for cannot run. Lazy:
        the caller may record candidates of its own between two pairs.
        """
        for name in names:
            why = unavailable(name)
            if why is not None:
                if self.explicit_backend:
                    raise ModelError(f"backend {name} is unavailable: {why}")
                self.reports.append(self.make(name, "-", "unavailable", why))
                continue
            runs = precisions(name)
            if self.explicit_precision:
                if self.precision not in runs:
                    if self.explicit_backend:
                        raise ModelError(f"backend {name} cannot run {self.precision} (it runs {', '.join(runs)})")
                    self.reports.append(
                        self.make(name, self.precision, "unavailable", f"{name} runs {', '.join(runs)} only")
                    )
                    continue
                runs = (self.precision,)
            for prec in runs:
                if name != "numpy":
                    problem = gate(name, prec)
                    if problem is not None:
                        status, detail = problem
                        if status == "not-built" and self.explicit_backend and self.explicit_precision:
                            raise ModelError(detail)
                        if not self.explicit_precision or status == "not-built":
                            self.reports.append(self.make(name, prec, status, detail))
                            continue
                        self.asked_anyway(name, prec, detail)
                yield name, prec

    def no_runnable(self, what: str) -> ModelError:
        """The error when nothing can run: every candidate and why."""
        return ModelError(f"no runnable {what} for {self.asked}: " + "; ".join(
            f"{c.label}: {c.detail}" for c in self.reports))

    def warnings_for(self, chosen: Identified) -> list[str]:
        """The warnings about ``chosen`` (those about candidates that lost do not matter)."""
        return [w for w in self.warnings if w.startswith(f"{chosen.backend}/{chosen.precision} ")]

    def reason(self, head: str, candidates: Sequence[C], warnings: Sequence[str]) -> str:
        """``head`` + what was asked + every skipped candidate's reason + ``warnings``."""
        skipped = [c for c in candidates if c.status not in ("chosen", "slower", "heavier")]
        parts = [f"{head} for {self.asked}"]
        parts += [f"skipped {c.label}: {c.detail}" for c in skipped]
        parts += list(warnings)
        return "; ".join(parts)
