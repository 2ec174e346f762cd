"""The backend contract and registry.

A :class:`Backend` turns a model variant (``models/<name>/<version>/``, see
:mod:`.manifest`) into a :class:`LoadedAnalyzer`: an
:class:`~streamprint.engine.analysis.FrameAnalyzer` that also says which backend,
precision and device run it. Backends register by name (``numpy``, ``onnxruntime``,
``openvino``); a backend whose runtime package is not installed stays registered and
reports why it is unavailable, so ``auto`` can say why it skipped it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from streamprint.engine.analysis import FrameAnalyzer, FrameDescriptors
from streamprint.errors import ModelError

#: The names ``--backend`` accepts besides ``auto``, in preference order for ties.
BACKEND_NAMES = ("openvino", "onnxruntime", "numpy")


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: where models live, CPU threads per inference call, device.

    ``device`` ``None`` picks the best the backend finds (CUDA / GPU when present, else
    CPU); ``threads`` is the intra-op thread count (1: the server parallelises across
    sessions instead).
    """

    models_dir: Path | None = None
    threads: int = 1
    device: str | None = None


class LoadedAnalyzer(FrameAnalyzer, Protocol):
    """A ready frame analyzer plus what it is: model id, backend, precision, device."""

    name: str
    version: str
    backend: str
    precision: str
    device: str
    load_seconds: float


class Backend(Protocol):
    """One runtime that can run the per-frame model (see module docstring)."""

    name: str

    def unavailable_reason(self) -> str | None:
        """``None`` when the runtime can be used here, else why not (e.g. not installed)."""
        ...

    def precisions(self) -> tuple[str, ...]:
        """Precisions this backend can run (``fp32``, ``int8``)."""
        ...

    def devices(self) -> tuple[str, ...]:
        """Devices it would use, best first (e.g. ``("CUDAExecutionProvider", "CPUExecutionProvider")``)."""
        ...

    def load(self, precision: str, options: LoadOptions) -> LoadedAnalyzer:
        """Load (and sha256-check) the model at ``precision``; :class:`ModelError` on failure."""
        ...


_REGISTRY: dict[str, Callable[[], Backend]] = {}
_INSTANCES: dict[str, Backend] = {}


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    """Register (or replace) the backend ``name``."""
    _REGISTRY[name] = factory
    _INSTANCES.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """Registered backend names."""
    return tuple(_REGISTRY)


def get_backend(name: str) -> Backend:
    """The registered backend ``name``; :class:`ModelError` if there is none."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown backend {name!r} (known: {', '.join(_REGISTRY)})")
    if name not in _INSTANCES:
        _INSTANCES[name] = _REGISTRY[name]()
    return _INSTANCES[name]


def empty_descriptors() -> FrameDescriptors:
    """Descriptors of zero frames."""
    from streamprint.engine.filters import N_MELS
    from streamprint.engine.grid import N_BINS

    f64 = np.zeros(0, dtype=np.float64)
    return FrameDescriptors(
        rms=f64, magnitude=np.zeros((0, N_BINS), np.float32), centroid=f64, rolloff=f64,
        flatness=f64, chroma_concentration=f64, mel_db=np.zeros((0, N_MELS), np.float32),
        band_power=np.zeros((0, 8), np.float64), f0=f64, voiced=np.zeros(0, dtype=bool),
    )


def as_f64(a: NDArray[np.float32]) -> NDArray[np.float64]:
    """A float64 copy of a runtime output."""
    return np.asarray(a, dtype=np.float64)
