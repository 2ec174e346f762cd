"""scripts/accuracy_gate.py: the corpus gate of quantize.py and heads_gate.py, and the
selection cache the audio and the video runtime selection share."""

from __future__ import annotations

import threading

from runtime_helpers import load_script

from streamprint.runtime.candidates import SelectionCache

gate_module = load_script("accuracy_gate")


def test_gate_passes_at_the_required_share() -> None:
    errors = {"a": [0.1] * 99 + [5.0], "b": [1.0] * 100}  # 99 % and 100 % within (<= 1 unit)
    accuracy, gate = gate_module.accuracy_and_gate(errors, 100)
    assert gate["passed"] and gate["share_within"] == {"a": 0.99, "b": 1.0}
    assert gate["reason"] == ("all 2 dimensions within tolerance of the numpy reference on "
                              ">= 99 % of 100 corpus clips")
    assert accuracy["a"]["max_error_tolerance_units"] == 5.0
    assert list(accuracy["a"]) == ["share_within_tolerance", "max_error_tolerance_units",
                                   "p99_error_tolerance_units", "mean_error_tolerance_units"]


def test_gate_names_every_failing_dimension_worst_first() -> None:
    errors = {"a": [2.0] * 10 + [0.0] * 90, "b": [2.0] * 50 + [0.0] * 50, "c": [0.0] * 100}
    accuracy, gate = gate_module.accuracy_and_gate(
        errors, 100, reference="the DSP reference", failed_clips="held-out clips",
        passed_clips="held-out clips", p99=False,
    )
    assert not gate["passed"]
    assert gate["reason"] == ("b within tolerance on 50.0 % of 100 held-out clips (< 99 %); "
                              "a within tolerance on 90.0 % of 100 held-out clips (< 99 %)")
    assert "p99_error_tolerance_units" not in accuracy["a"]


def test_selection_cache_makes_once_per_key_unless_told_not_to() -> None:
    cache: SelectionCache[object] = SelectionCache()
    made: list[str] = []

    def make(key: str) -> object:
        made.append(key)
        return object()

    first = cache.get("k", lambda: make("k"))
    threads = [threading.Thread(target=cache.get, args=("k", lambda: make("k"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("k", lambda: make("k")) is first and made == ["k"]
    assert cache.get("k", lambda: make("k"), cached=False) is not first and made == ["k", "k"]
    cache.clear()
    assert cache.get("k", lambda: make("k")) is not first and made == ["k", "k", "k"]
