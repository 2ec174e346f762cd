"""The engine's compiled loops (``_ckernels.c``), loaded with ctypes.

``pip install`` (``make setup``) builds the C file as an extension of this package; it has no
Python API and is loaded here with :class:`ctypes.CDLL`, which releases the GIL for every
call. Loading takes well under a millisecond and nothing is compiled at run time (the numba
kernels this replaces cost about a second of start-up per process, with the GIL held).

Callers pass contiguous arrays of the declared dtypes (ctypes checks dtype and contiguity);
the wrappers in :mod:`iir`, :mod:`pitch`, :mod:`median`, :mod:`native` and :mod:`heads` check
shapes and convert. A checkout whose library was not built, or was built from an older source (its
``sp_abi_version`` differs from :data:`ABI_VERSION`), gives one clear error naming the
command that builds it.
"""

from __future__ import annotations

import ctypes
import importlib.util
from functools import cache
from typing import Any

import numpy as np

from streamprint.errors import InstallationError

_MODULE = "streamprint.engine._ckernels"
#: ``SP_ABI_VERSION`` of the ``_ckernels.c`` this module's signatures describe.
ABI_VERSION = 7
_i64 = ctypes.c_int64
_f64 = ctypes.c_double


def _array(dtype: type[np.generic]) -> Any:
    return np.ctypeslib.ndpointer(dtype=dtype, flags="C_CONTIGUOUS")


_SIGNATURES: dict[str, list[Any]] = {
    "sp_weighted_energy_f32": [
        _array(np.float64), _i64, _array(np.float32), _i64, _i64, _array(np.float64), _array(np.float64),
        _array(np.float64),
    ],
    "sp_weighted_energy_f64": [
        _array(np.float64), _i64, _array(np.float64), _i64, _i64, _array(np.float64), _array(np.float64),
        _array(np.float64),
    ],
    "sp_yin_rows": [
        _array(np.float64), _i64, _array(np.float32), _i64, _i64, _i64, _i64, _f64, _f64, _array(np.float64),
        _array(np.uint8), _array(np.float64),
    ],
    "sp_sliding_median_rows": [_array(np.float32), _i64, _i64, _i64, _array(np.float32), _array(np.float32)],
    "sp_stereo_segments": [_array(np.float32), _i64, _i64, _array(np.int64), _i64, _array(np.float64)],
    "sp_crest_segments": [
        _array(np.float32), _i64, _i64, _array(np.int64), _i64, _array(np.float64), _array(np.float64),
    ],
    "sp_box_mean_rows": [
        _array(np.float32), _i64, _i64, _array(np.int64), _i64, _i64, _array(np.float32), _array(np.float32),
    ],
    "sp_harmonic_exponent": [
        _array(np.float32), _i64, _i64, _i64, _array(np.float32), _array(np.float32), _array(np.float32),
    ],
    "sp_block_acf_spectrum": [
        _array(np.complex128), _array(np.int64), _i64, _i64, _i64, _i64, _array(np.float64),
        _array(np.complex128), _array(np.complex128),
    ],
    "sp_consecutive_rows": [_array(np.float32), _i64, _i64, _i64, _array(np.uint8)],
    "sp_frame_rms": [_array(np.float32), _i64, _i64, _array(np.float64)],
    "sp_harmonic_bands": [
        _array(np.float32), _array(np.float32), _array(np.float64), _i64, _i64, _i64, _i64, _array(np.float32),
        _array(np.float64),
    ],
}


@cache
def library() -> ctypes.CDLL:
    """The loaded C library with its functions' argument types declared.

    Raises :class:`InstallationError` when the library is missing (a checkout used without
    ``pip install -e .`` / ``make setup``) or does not hold the expected functions.
    """
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or spec.origin is None:
        raise InstallationError(
            "streamprint's compiled kernels are not built: run `make setup` "
            "(or `pip install -e .`, which needs a C compiler)"
        )
    try:
        lib = ctypes.CDLL(spec.origin)
        lib.sp_abi_version.argtypes = []
        lib.sp_abi_version.restype = ctypes.c_int64
        built = int(lib.sp_abi_version())
        if built != ABI_VERSION:
            raise InstallationError(
                f"streamprint's compiled kernels at {spec.origin} are from another version "
                f"(ABI {built}, this code needs {ABI_VERSION}): run `make setup` (or `pip install -e .`)"
            )
        for name, argtypes in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = None
    except (OSError, AttributeError) as exc:
        raise InstallationError(f"streamprint's compiled kernels at {spec.origin} do not load: {exc}") from exc
    return lib


def warm_up() -> None:
    """Load the library now, so a missing build fails at start-up rather than mid-stream."""
    library()
