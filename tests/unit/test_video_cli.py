"""`streamprint fingerprint` on video files: modality detection, batch, --stream, --json."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import video_clips as vc

from streamprint.cli import main
from streamprint.engine import dims


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vcli") / "clip.mp4"
    path.write_bytes(vc.encode(vc.moving_with_cut(2.0), seconds=4.0, container="mp4-moov-end"))
    return path


def _run(*args: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = main(list(args), out=out)
    return code, out.getvalue().splitlines()


def test_batch_json_detects_video(clip: Path) -> None:
    code, lines = _run("fingerprint", str(clip), "--json")
    assert code == 0 and len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["algorithm"] == "video-13d/1" and obj["final"] is True
    assert list(obj["values"]) == list(dims.VIDEO_13D) == list(obj["confidence"])
    assert obj["values"]["scene_cut_rate"] == pytest.approx(15.0, rel=0.05)  # one cut in 4 s


def test_stream_json_matches_batch(clip: Path) -> None:
    code, lines = _run("fingerprint", str(clip), "--stream", "--chunk-ms", "250", "--json")
    assert code == 0
    objs = [json.loads(line) for line in lines]
    assert [o["revision"] for o in objs] == list(range(1, len(objs) + 1))
    assert objs[-1]["final"] is True and not any(o["final"] for o in objs[:-1])
    assert len(objs) >= 4
    _, batch = _run("fingerprint", str(clip), "--json")
    assert objs[-1]["values"] == json.loads(batch[0])["values"]


def test_table_and_explicit_modality(clip: Path) -> None:
    code, lines = _run("fingerprint", str(clip), "--modality", "video")
    assert code == 0 and lines[0].startswith(f"{clip}: video-13d/1")


def test_not_video_with_explicit_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video at all" * 50)
    code, _ = _run("fingerprint", str(bad), "--modality", "video")
    assert code == 1
    assert "MEDIA_UNDECODABLE" in capsys.readouterr().err


def test_backend_flags_choose_the_video_analyzer_and_json_says_which(clip: Path) -> None:
    from runtime_helpers import require_runtime

    require_runtime("onnxruntime")
    code, lines = _run("fingerprint", str(clip), "--json", "--backend", "onnxruntime", "--precision", "fp32")
    assert code == 0
    obj = json.loads(lines[0])
    assert (obj["backend"], obj["precision"], obj["model"]) == ("onnxruntime", "fp32", "video-onnxruntime-fp32")
    assert "--backend onnxruntime --precision fp32" in obj["selection_reason"]
    code, lines = _run("fingerprint", str(clip), "--json", "--backend", "numpy")
    ref = json.loads(lines[0])
    assert (ref["backend"], ref["precision"], ref["model"]) == ("numpy", "fp32", "numpy-reference-video")
    for name in dims.VIDEO_13D:  # FP32 graph == reference within a small share of the tolerance
        tol = dims.get(name).tolerance_for(ref["values"][name])
        assert abs(obj["values"][name] - ref["values"][name]) <= 1e-3 * tol + 1e-9, name
    code, lines = _run("fingerprint", str(clip), "--stream", "--json", "--backend", "onnxruntime", "--precision", "fp32")
    objs = [json.loads(line) for line in lines]
    assert code == 0 and all(o["model"] == "video-onnxruntime-fp32" and o["backend"] == "onnxruntime" for o in objs)
    assert objs[-1]["values"] == obj["values"]


def test_unknown_video_variant_is_one_error_line(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run("fingerprint", str(clip), "--backend", "numpy", "--precision", "int8")
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MODEL_UNAVAILABLE" in err[0] and "numpy cannot run int8" in err[0]
