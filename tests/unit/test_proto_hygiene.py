"""buf lint and buf breaking on protos/ (scripts/check_protos.sh), and that breaking changes
are really caught. Needs buf (``npm ci --prefix scripts/buf``): skips locally without it,
fails under CI (``CI`` set)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_protos.sh"


def _buf() -> str:
    for candidate in (
        os.environ.get("BUF", ""),
        str(ROOT / "scripts" / "buf" / "node_modules" / ".bin" / "buf"),
        str(ROOT / ".cache" / "buf" / "node_modules" / ".bin" / "buf"),
        shutil.which("buf") or "",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = "buf is not installed (npm ci --prefix scripts/buf)"
    if os.environ.get("CI"):
        pytest.fail(f"proto checks must run in CI: {reason}")
    pytest.skip(reason)


def test_check_protos_script_passes() -> None:
    buf = _buf()
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "BUF": buf},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "buf lint protos" in result.stdout


def test_breaking_change_is_caught(tmp_path: Path) -> None:
    buf = _buf()
    changed = tmp_path / "protos"
    shutil.copytree(ROOT / "protos", changed)
    media = changed / "streamprint" / "v1" / "media.proto"
    text = media.read_text()
    assert "  double confidence = 3;\n" in text
    media.write_text(text.replace("  double confidence = 3;\n", "", 1))
    result = subprocess.run(
        [buf, "breaking", str(changed), "--against", str(ROOT / "protos")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "confidence" in result.stdout + result.stderr


def test_lint_catches_a_bad_name(tmp_path: Path) -> None:
    buf = _buf()
    changed = tmp_path / "protos"
    shutil.copytree(ROOT / "protos", changed)
    admin = changed / "streamprint" / "v1" / "admin_service.proto"
    admin.write_text(admin.read_text() + "\n// A badly named message.\nmessage bad_name {}\n")
    result = subprocess.run(
        [buf, "lint", str(changed)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "bad_name" in result.stdout + result.stderr
