"""The compiled loops load with their declared signatures, and a build without them fails
with one clear error (at start-up: the server and the CLI load them before any work)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np
import pytest

from streamprint.engine import compiled, iir
from streamprint.errors import InstallationError


def test_library_declares_every_kernel() -> None:
    lib = compiled.library()
    for name in ("sp_weighted_energy_f32", "sp_weighted_energy_f64", "sp_yin_rows", "sp_sliding_median_rows"):
        assert getattr(lib, name).argtypes, name


@pytest.fixture
def fresh_library() -> Iterator[None]:
    """The loader's cache cleared around the test (its monkeypatches undone first), so the
    test loads afresh and later tests get the real library again."""
    compiled.library.cache_clear()
    yield
    compiled.library.cache_clear()


@pytest.mark.usefixtures("fresh_library")
def test_a_missing_build_is_an_installation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_MODULE", "streamprint.engine._no_such_build")
    with pytest.raises(InstallationError, match="make setup"):
        compiled.warm_up()


@pytest.mark.usefixtures("fresh_library")
def test_a_library_without_the_kernels_is_an_installation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_SIGNATURES", {"sp_not_there": []})
    with pytest.raises(InstallationError, match="do not load"):
        compiled.library()


def test_wrong_arguments_never_reach_the_c_code() -> None:
    """ctypes checks dtype and contiguity: a wrapper bug raises instead of reading memory."""
    lib = compiled.library()
    sos = np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    with pytest.raises(Exception, match="array"):
        lib.sp_weighted_energy_f32(sos, 1, np.zeros((4, 2)), 4, 2, np.zeros((1, 2, 2)), np.ones(2), np.empty(4))
    # the wrapper converts what it may
    energy, _ = iir.weighted_energy(sos, np.ones((4, 2), dtype=np.int16), np.zeros((1, 2, 2)), np.ones(2))
    assert energy.tolist() == [2.0] * 4


def test_the_library_is_an_extension_of_the_package() -> None:
    spec = importlib.util.find_spec(compiled._MODULE)
    assert spec is not None and spec.origin is not None and spec.origin.endswith(".so")
