"""The Node.js client (clients/node) against a real server: its own `node --test` suite, and
parity of its final fingerprint with the Python client's for the same file.

Needs ``node`` and ``clients/node/node_modules`` (``npm ci --prefix clients/node``). Without
them the tests skip locally, but fail under CI (``CI`` set), where they must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from grpc_harness import ServerThread

from streamprint_client import StreamprintClient

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "clients" / "node"
CLI = NODE_DIR / "bin" / "streamprint.js"


def _node() -> str:
    node = shutil.which("node")
    missing = (
        "node is not installed"
        if node is None
        else "clients/node/node_modules is missing (run `npm ci --prefix clients/node`)"
        if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir()
        else None
    )
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the Node client must be tested in CI: {missing}")
        pytest.skip(missing)
    assert node is not None
    return node


def test_node_test_runner(server: ServerThread) -> None:
    node = _node()
    result = subprocess.run(
        [node, "--test", "test/"],
        cwd=NODE_DIR,
        env={**os.environ, "STREAMPRINT_SERVER": server.address},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "# fail 0" in result.stdout


@pytest.mark.parametrize("name", ["clip.wav", "clip.flac"])
def test_node_final_equals_python(server: ServerThread, media_dir: Path, name: str) -> None:
    node = _node()
    path = media_dir / name
    result = subprocess.run(
        [node, str(CLI), "stream", str(path), "--json"],
        env={**os.environ, "STREAMPRINT_SERVER": server.address},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    node_final = lines[-1]
    assert node_final["final"] and not any(line["final"] for line in lines[:-1])

    with StreamprintClient(server.address) as client:
        py_final = list(client.stream_file(path))[-1].to_json_dict()
    py_final["path"] = str(path)

    assert set(node_final) == set(py_final)
    for key in ("values", "confidence", "revision", "media_seconds", "algorithm", "model"):
        assert node_final[key] == py_final[key], key
    assert list(node_final["values"]) == list(py_final["values"])  # same order of names


def test_node_gives_up_on_a_server_that_never_answers(media_dir: Path) -> None:
    """A listener that accepts TCP and says nothing: the Node client had no deadline at all
    and hung (150 s in the review). --timeout bounds the connect (stream) and the call (info)."""
    import socket

    node = _node()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        for command in (["info"], ["stream", str(media_dir / "short.wav")]):
            result = subprocess.run(
                [node, str(CLI), *command, "--server", address, "--timeout", "1", "--json"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 1, (command, result.stdout, result.stderr)
            error = json.loads(result.stdout.splitlines()[-1])["error"]
            assert error["code"] in ("UNAVAILABLE", "DEADLINE_EXCEEDED"), error
