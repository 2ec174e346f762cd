"""A short fuzz pass (hypothesis) over the decoders, request conversion, config and tokens.

The targets, corpus and mutations live in scripts/fuzz.py, which also runs the long version
(atheris when installed). Each case runs under a wall-clock limit; the run stays < 30 s.
"""

from __future__ import annotations

import importlib.util
import random
import resource
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fuzz.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("streamprint_fuzz", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fuzz = _load()
SEEDS = {name: fuzz.seeds(name) for name in fuzz.TARGETS}
EXAMPLES = {"decode_bytes": 200, "streaming": 200, "pcm": 150, "convert": 300, "config": 150}


@st.composite
def _inputs(draw: st.DrawFn, target: str) -> bytes:
    if draw(st.integers(0, 3)) == 0:
        return bytes(draw(st.binary(max_size=1024)))
    seed = draw(st.sampled_from(SEEDS[target]))
    return bytes(fuzz.mutate(seed, random.Random(draw(st.integers(0, 2**32)))))


def test_corpus_has_every_container() -> None:
    corpus = fuzz.media_corpus()
    assert {"wav16", "flac", "ogg", "mp4", "ts"} <= set(corpus)
    for name in ("wav16", "flac", "ogg"):  # the seeds themselves decode
        fuzz.run_case("decode_bytes", corpus[name])
        fuzz.run_case("streaming", corpus[name])


@pytest.mark.parametrize("target", sorted(fuzz.TARGETS))
def test_fuzz_target(target: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    @settings(
        max_examples=EXAMPLES.get(target, 100),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_inputs(target))
    def check(data: bytes) -> None:
        fuzz.run_case(target, data, limit_s=5.0)

    check()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - before
    assert grown < 400, f"peak RSS grew by {grown:.0f} MB"


def test_time_limit_catches_a_hang() -> None:
    import time

    with pytest.raises(fuzz.CaseTimeoutError), fuzz.time_limit(0.2):
        time.sleep(2)
