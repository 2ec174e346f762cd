"""Fixtures: a real grpc.aio server on 127.0.0.1:0 (in a background thread) and test media."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc_harness import BASE_CONFIG, ServerThread, encode, music


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    """A server with default limits, shared by a test module."""
    thread = ServerThread(BASE_CONFIG).start()
    yield thread
    thread.stop()


@pytest.fixture
def make_server() -> Iterator[Callable[..., ServerThread]]:
    """Start servers with config overrides; all stopped at the end of the test."""
    started: list[ServerThread] = []

    def make(**overrides: Any) -> ServerThread:
        thread = ServerThread(dataclasses.replace(BASE_CONFIG, **overrides)).start()
        started.append(thread)
        return thread

    yield make
    for thread in started:
        thread.stop()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Test media files: short WAV and FLAC clips."""
    root = tmp_path_factory.mktemp("media")
    (root / "clip.wav").write_bytes(encode(music(4.0), 22050))
    (root / "short.wav").write_bytes(encode(music(2.0, channels=1, bpm=100.0, seed=3), 16000))
    (root / "clip.flac").write_bytes(encode(music(3.0, rate=44100, seed=2), 44100, "FLAC"))
    (root / "garbage.bin").write_bytes(b"this is not audio at all " * 400)
    return root
