"""Model manifests: what a model directory holds, and the sha256 check at load.

A model lives in ``models/<name>/<version>/`` beside a ``manifest.json`` that lists every
file with its sha256, the graph's inputs and outputs (shapes, units), the opset, and one
*variant* per runtime x precision (``onnxruntime/fp32``, ``onnxruntime/int8``,
``openvino/fp32``, ``openvino/int8``): the files it needs, how it was made (calibration
set, quantized nodes), its accuracy per dimension against the numpy reference over the
corpus, its accuracy gate verdict and its measured speed. ``scripts/export_models.py``
writes the FP32 part, ``scripts/quantize.py`` the INT8 variants and the measurements.

This module is plain json + hashlib: the server reads manifests without onnx or NNCF.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamprint.errors import ModelError

MANIFEST_NAME = "manifest.json"
#: Environment variable naming the models directory (default: ``models/`` of the repository).
MODELS_DIR_ENV = "STREAMPRINT_MODELS_DIR"
#: The model holding the per-frame spectral work, and its current version.
SPECTRAL_MODEL = "spectral"
SPECTRAL_VERSION = "2"
PRECISIONS = ("fp32", "int8")


def default_models_dir() -> Path:
    """``$STREAMPRINT_MODELS_DIR``, else the repository's ``models/`` (next to ``server/``)."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Gate:
    """The accuracy gate verdict of one variant over the corpus.

    ``passed`` when every dimension is within its registry tolerance of the numpy
    reference on at least ``required_share`` of the clips; ``reason`` says which
    dimensions failed (or that none did); ``worst_share`` maps each dimension to its share
    of clips within tolerance.
    """

    passed: bool
    reason: str
    required_share: float
    worst_share: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Gate:
        return cls(
            passed=bool(data["passed"]),
            reason=str(data["reason"]),
            required_share=float(data.get("required_share", 0.99)),
            worst_share={str(k): float(v) for k, v in dict(data.get("share_within", {})).items()},
        )


@dataclass(frozen=True)
class Variant:
    """One runtime x precision build of a model.

    ``files`` maps a role (``onnx``, ``xml``, ``bin``) to a path relative to the model
    directory; ``gate`` is ``None`` until ``scripts/quantize.py`` has measured it;
    ``frames_per_second`` is the speed it measured (``None`` if not measured).
    """

    key: str
    runtime: str
    precision: str
    files: Mapping[str, str]
    gate: Gate | None
    frames_per_second: float | None
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class ModelManifest:
    """A parsed ``manifest.json`` (see module docstring); ``root`` is the model directory."""

    name: str
    version: str
    root: Path
    opset: int
    files: Mapping[str, str]
    inputs: tuple[Mapping[str, Any], ...]
    outputs: tuple[Mapping[str, Any], ...]
    variants: Mapping[str, Variant]
    raw: Mapping[str, Any]

    @property
    def model_id(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"

    def variant(self, runtime: str, precision: str) -> Variant:
        """The ``runtime/precision`` variant; :class:`ModelError` if the manifest lacks it."""
        key = f"{runtime}/{precision}"
        try:
            return self.variants[key]
        except KeyError:
            have = ", ".join(sorted(self.variants)) or "none"
            raise ModelError(
                f"model {self.model_id} has no {key} variant (it has: {have}); "
                "run `make models` to build the models"
            ) from None

    def path(self, relative: str) -> Path:
        """Absolute path of a file of this model."""
        return self.root / relative

    def verify(self, relatives: list[str] | None = None) -> None:
        """Check the sha256 of ``relatives`` (default: every listed file).

        Raises :class:`ModelError` naming the first missing or corrupt file.
        """
        for rel in relatives if relatives is not None else list(self.files):
            expected = self.files.get(rel)
            if expected is None:
                raise ModelError(f"model {self.model_id}: {rel} is not listed in its manifest")
            path = self.path(rel)
            if not path.is_file():
                raise ModelError(
                    f"model {self.model_id}: file {path} is missing; run `make models` to rebuild it"
                )
            actual = sha256_file(path)
            if actual != expected:
                raise ModelError(
                    f"model {self.model_id}: file {path} is corrupt (sha256 {actual[:12]}... "
                    f"!= manifest {expected[:12]}...); run `make models` to rebuild it"
                )

    def verify_variant(self, variant: Variant) -> None:
        """Check the sha256 of every file ``variant`` needs."""
        self.verify(list(variant.files.values()))


def load_manifest(
    name: str = SPECTRAL_MODEL, version: str = SPECTRAL_VERSION, *, models_dir: Path | None = None
) -> ModelManifest:
    """Read ``<models_dir>/<name>/<version>/manifest.json``; :class:`ModelError` if unusable."""
    root = (models_dir or default_models_dir()) / name / version
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(f"model {name}/{version}: no manifest at {path}; run `make models` to build it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return parse_manifest(data, root)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model {name}/{version}: unreadable manifest {path}: {exc}") from exc


def parse_manifest(data: Mapping[str, Any], root: Path) -> ModelManifest:
    """Build a :class:`ModelManifest` from decoded JSON (raises KeyError/TypeError/ValueError)."""
    variants: dict[str, Variant] = {}
    for key, entry in dict(data.get("variants", {})).items():
        runtime, precision = str(key).split("/", 1)
        gate = entry.get("gate")
        speed = entry.get("speed", {}).get("frames_per_second")
        variants[str(key)] = Variant(
            key=str(key),
            runtime=runtime,
            precision=precision,
            files={str(k): str(v) for k, v in dict(entry["files"]).items()},
            gate=Gate.from_json(gate) if gate else None,
            frames_per_second=float(speed) if speed is not None else None,
            raw=entry,
        )
    return ModelManifest(
        name=str(data["name"]),
        version=str(data["version"]),
        root=root,
        opset=int(data["opset"]),
        files={str(k): str(v) for k, v in dict(data["files"]).items()},
        inputs=tuple(data["inputs"]),
        outputs=tuple(data["outputs"]),
        variants=variants,
        raw=data,
    )


def write_manifest(root: Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as ``root/manifest.json`` (sorted keys, stable formatting)."""
    path = root / MANIFEST_NAME
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
