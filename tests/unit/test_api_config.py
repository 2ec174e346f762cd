"""ServerConfig: every flag also as STREAMPRINT_* env; flag > env > default."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from streamprint.config import ServerConfig, env_name, option_flag, parse_bytes
from streamprint.errors import InvalidInputError


def _parse(argv: list[str], env: dict[str, str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser()
    ServerConfig.add_arguments(parser)
    return ServerConfig.from_sources(parser.parse_args(argv), env or {})


def test_defaults() -> None:
    config = _parse([])
    assert (config.host, config.port, config.backend, config.precision) == (
        "127.0.0.1",
        50051,
        "auto",
        "auto",
    )
    assert config.metrics_port is None and config.reflection and config.admin
    assert config.address == "127.0.0.1:50051"


def test_every_field_has_a_flag_and_an_env_variable() -> None:
    parser = argparse.ArgumentParser()
    ServerConfig.add_arguments(parser)
    help_text = parser.format_help()
    for f in dataclasses.fields(ServerConfig):
        assert option_flag(f.name) in help_text
        assert env_name(f.name) in help_text


def test_flag_beats_env_beats_default() -> None:
    env = {
        "STREAMPRINT_PORT": "6000",
        "STREAMPRINT_HOST": "0.0.0.0",
        "STREAMPRINT_REFLECTION": "off",
    }
    config = _parse(["--port", "7000"], env)
    assert config.port == 7000 and config.host == "0.0.0.0" and config.reflection is False
    assert _parse(["--reflection"], env).reflection is True


def test_sizes_and_floats() -> None:
    config = _parse(
        ["--max-message-bytes", "8MiB"],
        {"STREAMPRINT_CACHE_MAX_BYTES": "1g", "STREAMPRINT_IDLE_TIMEOUT_S": "2.5"},
    )
    assert config.max_message_bytes == 8 * 1024 * 1024
    assert config.cache_max_bytes == 1024**3
    assert config.idle_timeout_s == 2.5
    assert parse_bytes("1024") == 1024 and parse_bytes("4 KiB") == 4096


def test_optional_port() -> None:
    assert _parse([], {"STREAMPRINT_METRICS_PORT": "9464"}).metrics_port == 9464
    assert _parse([], {"STREAMPRINT_METRICS_PORT": ""}).metrics_port is None


def test_bad_values_name_flag_and_env_all_at_once() -> None:
    with pytest.raises(InvalidInputError) as info:
        _parse(
            ["--port", "70000"],
            {"STREAMPRINT_IDLE_TIMEOUT_S": "soon", "STREAMPRINT_BACKEND": "gpu"},
        )
    fields = {v.field for v in info.value.violations}
    assert fields == {"--port", "STREAMPRINT_IDLE_TIMEOUT_S", "STREAMPRINT_BACKEND"}


def test_minimums_enforced() -> None:
    with pytest.raises(InvalidInputError, match="max-streams"):
        _parse(["--max-streams", "0"])


def test_batching_flags_and_env() -> None:
    off = _parse(["--engine-threads", "2"])
    assert not off.batching_enabled and off.stream_threads == 2  # off by default
    on = _parse(["--engine-threads", "2", "--batching", "--batch-max-frames", "128", "--batch-max-wait-ms", "1.5"])
    assert on.batching_enabled and (on.batch_max_frames, on.batch_max_wait_ms) == (128, 1.5)
    assert on.stream_threads == 2 + 4  # a thread per 32 frames of a batch
    env = {"STREAMPRINT_BATCHING": "1", "STREAMPRINT_BATCH_MAX_FRAMES": "64"}
    assert _parse(["--engine-threads", "1"], env).stream_threads == 3
    assert not _parse([], {**env, "STREAMPRINT_BATCH_MAX_FRAMES": "0"}).batching_enabled
    assert not _parse(["--batch-max-wait-ms", "0"], env).batching_enabled
    assert not _parse(["--no-batching"], env).batching_enabled
    with pytest.raises(InvalidInputError) as err:
        _parse(["--batch-max-frames", "-1"])
    assert err.value.violations[0].field == "--batch-max-frames"
