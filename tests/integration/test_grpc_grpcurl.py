"""Every grpcurl example of the docs (and of README.md, once it carries the block) runs."""

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
DOCS = [ROOT / "README.md", ROOT / "docs" / "grpc-api.md"]
BLOCK_RE = re.compile(r"<!-- grpcurl-examples -->\s*```sh\n(.*?)```", re.DOTALL)
DOC_ADDRESS = "127.0.0.1:50051"


def _grpcurl() -> str | None:
    local = Path(sys.executable).parent / "grpcurl"
    return str(local) if local.exists() else shutil.which("grpcurl")


def _examples() -> list[str]:
    commands: list[str] = []
    for doc in DOCS:
        if doc.exists():
            for block in BLOCK_RE.findall(doc.read_text()):
                commands += [line.strip() for line in block.splitlines() if line.strip()]
    return list(dict.fromkeys(commands))


EXAMPLES = _examples()
pytestmark = pytest.mark.skipif(_grpcurl() is None, reason="grpcurl is not installed (make setup)")


def _run(command: str, server: ServerThread, cwd: Path) -> subprocess.CompletedProcess[str]:
    grpcurl = _grpcurl()
    assert grpcurl is not None
    env = {**os.environ, "PATH": f"{Path(grpcurl).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["bash", "-c", "set -o pipefail; " + command.replace(DOC_ADDRESS, server.address)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_docs_have_all_five_examples() -> None:
    text = "\n".join(EXAMPLES)
    for needle in (" list", " describe ", "Health/Check", "GetServerInfo", "base64"):
        assert needle in text


@pytest.mark.parametrize("command", EXAMPLES)
def test_example_runs(command: str, server: ServerThread, media_dir: Path) -> None:
    result = _run(command, server, media_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    if command.endswith(" list"):
        for service in (
            "streamprint.v1.FingerprintService",
            "streamprint.v1.AdminService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        ):
            assert service in out
    elif " describe " in command:
        assert "rpc StreamFingerprint ( stream .streamprint.v1.StreamFingerprintRequest )" in out
    elif "Health/Check" in command:
        assert json.loads(out) == {"status": "SERVING"}
    elif "GetServerInfo" in command:
        info = json.loads(out)
        audio = [d for d in info["dimensions"] if d["modality"] == "MODALITY_AUDIO"]
        assert info["api_version"] == "streamprint.v1" and len(audio) == 25
    elif "/Fingerprint" in command:
        response = json.loads(out)
        names = [d["name"] for d in response["fingerprint"]["dimensions"]]
        assert len(names) == 25 and names[0] == "spectral_centroid"
        assert response["fingerprint"]["final"] is True and len(response["media_sha256"]) == 64


def test_grpcurl_shows_rich_error_details(server: ServerThread, media_dir: Path) -> None:
    command = (
        'grpcurl -plaintext -d \'{"media": {"data": "bm90IGF1ZGlv"}}\' '
        f"{DOC_ADDRESS} streamprint.v1.FingerprintService/Fingerprint"
    )
    result = _run(command, server, media_dir)
    assert result.returncode != 0
    assert "Code: InvalidArgument" in result.stderr
    assert "google.rpc.BadRequest" in result.stderr and "MEDIA_UNDECODABLE" in result.stderr
