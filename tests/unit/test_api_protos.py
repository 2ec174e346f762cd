"""The generated stubs match protos/, and the client imports without the server package."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gen_protos() -> object:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_stubs_are_up_to_date() -> None:
    problems = _gen_protos().stale_files()  # type: ignore[attr-defined]
    assert not problems, "stale generated stubs; run: python scripts/gen_protos.py\n" + "\n".join(
        problems
    )


def test_client_imports_without_server_or_heavy_packages() -> None:
    code = (
        "import sys, json\n"
        "import streamprint_client, streamprint_client.cli\n"
        "heavy = [m for m in ('streamprint', 'numpy', 'soxr', 'av', 'soundfile', 'cachetools', 'google.rpc')"
        " if m in sys.modules]\n"
        "print(json.dumps(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "clients" / "python",
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "clients" / "python"), "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(result.stdout) == []


def test_server_and_client_stubs_coexist_in_one_process() -> None:
    from streamprint.api._generated import fingerprint_service_pb2 as server_pb
    from streamprint_client._generated import fingerprint_service_pb2 as client_pb

    assert server_pb.DESCRIPTOR.serialized_pb == client_pb.DESCRIPTOR.serialized_pb
    request = client_pb.FingerprintRequest(dimensions=["tempo_bpm"])
    assert server_pb.FingerprintRequest.FromString(request.SerializeToString()).dimensions == [
        "tempo_bpm"
    ]


def test_buf_lint_standard_and_comments() -> None:
    import shutil

    import pytest

    buf = ROOT / "scripts" / "buf" / "node_modules" / ".bin" / "buf"
    binary = str(buf) if buf.exists() else shutil.which("buf")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("buf is missing in CI: `make setup` runs `npm ci --prefix scripts/buf`")
        pytest.skip("buf is not installed (npm ci --prefix scripts/buf)")
    result = subprocess.run(
        [binary, "lint", "protos"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
