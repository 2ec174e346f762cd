"""Every example of docs/api.md runs against a real server: grpcurl and Python, per RPC."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_harness import ServerThread

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"
EXAMPLE_RE = re.compile(
    r"<!-- api-example: (grpcurl|python) (\w+) -->\s*```(?:sh|python)\n(.*?)```", re.DOTALL
)
DOC_ADDRESS = "127.0.0.1:50051"
RPCS = (
    "StreamFingerprint",
    "Fingerprint",
    "BatchFingerprint",
    "ValidateFingerprints",
    "GetServerInfo",
    "GetCacheStats",
)


def _examples() -> list[tuple[str, str, str]]:
    return [(kind, name, body) for kind, name, body in EXAMPLE_RE.findall(DOC.read_text())]


EXAMPLES = _examples()


def _grpcurl() -> str | None:
    local = Path(sys.executable).parent / "grpcurl"
    return str(local) if local.exists() else shutil.which("grpcurl")


def test_every_rpc_has_both_examples() -> None:
    have = {(kind, name) for kind, name, _ in EXAMPLES}
    for rpc in RPCS:
        assert ("grpcurl", rpc) in have and ("python", rpc) in have, rpc
    assert {("grpcurl", "ClearCache"), ("grpcurl", "Health"), ("python", "Errors")} <= have


@pytest.fixture
def workdir(tmp_path: Path, media_dir: Path) -> Path:
    shutil.copy(media_dir / "clip.wav", tmp_path / "clip.wav")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "body"),
    [(name, body) for kind, name, body in EXAMPLES if kind == "grpcurl"],
    ids=[name for kind, name, _ in EXAMPLES if kind == "grpcurl"],
)
def test_grpcurl_example(name: str, body: str, server: ServerThread, workdir: Path) -> None:
    grpcurl = _grpcurl()
    if grpcurl is None:
        pytest.skip("grpcurl is not installed (make setup)")
    env = {**os.environ, "PATH": f"{Path(grpcurl).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-c", "set -o pipefail; " + body.strip().replace(DOC_ADDRESS, server.address)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    if name == "StreamFingerprint":
        messages = [json.loads(m) for m in re.split(r"(?<=\})\n(?=\{)", out.strip())]
        assert messages[-1]["fingerprint"]["final"] is True
        assert {m["client_stream_id"] for m in messages} == {"doc"}
        assert len(messages) >= 3
    elif name == "Fingerprint":
        names = [d["name"] for d in json.loads(out)["fingerprint"]["dimensions"]]
        assert names == ["tempo_bpm", "integrated_lufs"]
    elif name == "BatchFingerprint":
        results = json.loads(out)["results"]
        assert "code" not in results[0]["status"] and results[1]["status"]["code"] == 3
    elif name == "ValidateFingerprints":
        report = json.loads(out)["results"][0]["report"]
        assert {d["name"] for d in report["dimensions"]} == {"tempo_bpm", "silence_ratio"}
    elif name == "GetServerInfo":
        assert json.loads(out)["api_version"] == "streamprint.v1"
    elif name == "GetCacheStats":
        assert set(json.loads(out)) <= {"fingerprints", "sessions"}
    elif name == "Health":
        assert json.loads(out) == {"status": "SERVING"}
    elif name == "Reflection":
        assert "message StreamConfig" in out
    elif name == "Errors":
        assert "exit 67" in out and "InvalidArgument" in result.stderr
        assert "google.rpc.BadRequest" in result.stderr


@pytest.mark.parametrize(
    ("name", "body"),
    [(name, body) for kind, name, body in EXAMPLES if kind == "python"],
    ids=[name for kind, name, _ in EXAMPLES if kind == "python"],
)
def test_python_example(name: str, body: str, server: ServerThread, workdir: Path) -> None:
    env = {
        **os.environ,
        "STREAMPRINT_SERVER": server.address,
        "PYTHONPATH": str(ROOT / "clients" / "python"),
    }
    result = subprocess.run(
        [sys.executable, "-c", body],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    if name == "StreamFingerprint":
        assert lines[-1].startswith("final True ")
    elif name == "Fingerprint":
        assert lines[-1] == "True"
    elif name == "BatchFingerprint":
        assert lines[0].startswith("0 audio-") and lines[1] == "1 INVALID_ARGUMENT"
    elif name == "ValidateFingerprints":
        assert lines[0].startswith("True ") and "spectral_centroid" in lines[1]
    elif name == "Errors":
        assert lines[0].startswith("INVALID_ARGUMENT ") and "media" in lines[0]
