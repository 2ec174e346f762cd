"""The remembered ``--backend auto`` choice (streamprint.runtime.memo)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from streamprint.runtime import LoadOptions, memo
from streamprint.runtime.manifest import default_models_dir
from streamprint.runtime.select import Selection


@pytest.fixture
def memo_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "selection.json"
    monkeypatch.setenv(memo.MEMO_ENV, str(path))
    return path


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every (backend, precision) memo passes to select_analyzer."""
    seen: list[tuple[str, str]] = []
    real = memo.select_analyzer

    def spy(backend: str, precision: str, *args: Any, **kwargs: Any) -> Selection:
        seen.append((backend, precision))
        return real(backend, precision, *args, **kwargs)

    monkeypatch.setattr(memo, "select_analyzer", spy)
    return seen


def test_second_run_loads_the_remembered_winner(memo_file: Path, calls: list[tuple[str, str]]) -> None:
    first = memo.remembered_analyzer("auto", "auto", heads="auto")
    assert memo_file.exists() and calls == [("auto", "auto")]
    second = memo.remembered_analyzer("auto", "auto", heads="auto")
    assert calls[1] == (first.backend, first.precision)
    assert (second.backend, second.precision, second.analyzer.name) == (
        first.backend, first.precision, first.analyzer.name,
    )
    assert (second.requested_backend, second.requested_precision) == ("auto", "auto")
    assert second.reason.startswith(first.reason)
    assert "remembered in" in second.reason and "--reselect" in second.reason
    assert [c.to_json_dict() for c in second.candidates] == [c.to_json_dict() for c in first.candidates]
    assert second.heads == first.heads


def test_reselect_measures_again(memo_file: Path, calls: list[tuple[str, str]]) -> None:
    memo.remembered_analyzer("auto", "auto")
    memo.remembered_analyzer("auto", "auto", reselect=True)
    assert calls == [("auto", "auto"), ("auto", "auto")]


def test_explicit_requests_are_not_remembered(memo_file: Path, calls: list[tuple[str, str]]) -> None:
    memo.remembered_analyzer("numpy", "fp32")
    assert calls == [("numpy", "fp32")] and not memo_file.exists()


def test_off_disables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, calls: list[tuple[str, str]]) -> None:
    monkeypatch.setenv(memo.MEMO_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert memo.memo_path() is None
    memo.remembered_analyzer("auto", "auto")
    memo.remembered_analyzer("auto", "auto")
    assert calls == [("auto", "auto")] * 2 and not any(tmp_path.iterdir())


def test_default_location_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(memo.MEMO_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert memo.memo_path() == tmp_path / "streamprint" / "selection.json"


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"k": 3'])
def test_a_damaged_file_means_not_remembered(
    memo_file: Path, calls: list[tuple[str, str]], content: str
) -> None:
    memo_file.parent.mkdir(parents=True)
    memo_file.write_text(content)
    memo.remembered_analyzer("auto", "auto")
    assert calls == [("auto", "auto")]
    assert len(json.loads(memo_file.read_text())) == 1


def test_a_stale_record_is_measured_again(memo_file: Path, calls: list[tuple[str, str]]) -> None:
    memo.remembered_analyzer("auto", "auto")
    entries = json.loads(memo_file.read_text())
    for record in entries.values():
        record["backend"] = "no-such-backend"
    memo_file.write_text(json.dumps(entries))
    selection = memo.remembered_analyzer("auto", "auto")
    assert calls == [("auto", "auto"), ("no-such-backend", calls[1][1]), ("auto", "auto")]
    assert "remembered" not in selection.reason
    assert all(r["backend"] != "no-such-backend" for r in json.loads(memo_file.read_text()).values())


def test_key_follows_the_request_and_the_models(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models)
    options = LoadOptions(models_dir=models)
    base = memo.memo_key("auto", "auto", "auto", options)
    assert base == memo.memo_key("auto", "auto", "auto", options)
    assert base != memo.memo_key("auto", "auto", "dsp", options)
    assert base != memo.memo_key("auto", "int8", "auto", options)
    assert base != memo.memo_key("auto", "auto", "auto", LoadOptions(models_dir=models, threads=2))
    manifest = next(models.glob("*/*/manifest.json"))
    manifest.write_text(manifest.read_text() + "\n")
    assert base != memo.memo_key("auto", "auto", "auto", options)


def test_the_file_keeps_the_most_recent_entries(memo_file: Path) -> None:
    memo_file.parent.mkdir(parents=True)
    old = {f"key{i}": {"backend": "numpy"} for i in range(memo.MAX_ENTRIES + 8)}
    memo_file.write_text(json.dumps(old))
    memo.remembered_analyzer("auto", "auto")
    kept = json.loads(memo_file.read_text())
    assert len(kept) == memo.MAX_ENTRIES
    assert "key0" not in kept and f"key{memo.MAX_ENTRIES + 7}" in kept
    assert list(kept)[-1] not in old  # the new entry is the most recent


def test_an_unwritable_location_still_selects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(memo.MEMO_ENV, str(blocker / "selection.json"))  # parent is a file
    selection = memo.remembered_analyzer("auto", "auto")
    assert selection.backend in ("numpy", "onnxruntime", "openvino")
