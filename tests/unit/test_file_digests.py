"""The server_path digest memo: remembered while the file is unchanged, forgotten on change."""

from __future__ import annotations

import os
from pathlib import Path

from streamprint.cache import FileDigests, media_sha256


def back_date(path: Path, seconds_ago: float = 60.0) -> os.stat_result:
    """Back-date the file's mtime (ctime is the kernel's: tests pass a clock instead)."""
    st = path.stat()
    t = st.st_mtime_ns - int(seconds_ago * 1e9)
    os.utime(path, ns=(t, t))
    return path.stat()


def later_clock(path: Path, seconds: float = 60.0) -> float:
    st = path.stat()
    return max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 + seconds


def test_remembered_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"one")
    before = back_date(path)
    memo = FileDigests(clock=lambda: later_clock(path))
    assert memo.lookup(path) is None
    assert memo.remember(path, before, media_sha256(b"one"))
    assert memo.lookup(path) == media_sha256(b"one")
    path.write_bytes(b"two")  # same size, new content: mtime/ctime move
    assert memo.lookup(path) is None
    assert len(memo) == 0  # a stale entry is dropped


def test_not_remembered_when_changed_during_the_read_or_too_recent(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"one")
    before = path.stat()
    # just written: a write in the same timestamp tick could go unnoticed
    memo = FileDigests(settle_s=2.0, clock=lambda: max(before.st_mtime_ns, before.st_ctime_ns) / 1e9)
    assert not memo.remember(path, before, media_sha256(b"one"))
    later = FileDigests(clock=lambda: later_clock(path))
    path.write_bytes(b"longer")  # changed between the stat and the remember
    assert not later.remember(path, before, media_sha256(b"one"))
    path.unlink()
    assert not later.remember(path, before, media_sha256(b"one"))


def test_bounded_and_cleared(tmp_path: Path) -> None:
    memo = FileDigests(max_entries=2, clock=lambda: 1e12)
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.wav"
        p.write_bytes(bytes([i]))
        paths.append(p)
        assert memo.remember(p, p.stat(), str(i))
    assert len(memo) == 2 and memo.lookup(paths[0]) is None and memo.lookup(paths[2]) == "2"
    assert memo.clear() == 2 and memo.lookup(paths[2]) is None
