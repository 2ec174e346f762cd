"""Freezing a server process's start-up objects out of the collector's full passes."""

from __future__ import annotations

from child import python_stdout


def test_freeze_moves_the_startup_objects_out_of_every_generation() -> None:
    out = python_stdout(
        "import gc\n"
        "import streamprint.api.server, numpy\n"  # what a server process has imported
        "before = len(gc.get_objects())\n"
        "from streamprint.gc_tuning import freeze_startup_objects\n"
        "frozen = freeze_startup_objects()\n"
        "print(before, frozen, gc.get_freeze_count(), len(gc.get_objects()))\n"
    )
    before, frozen, count, left = map(int, out.split())
    assert frozen == count > 10_000  # the imports alone: modules, functions, classes ...
    assert frozen >= 0.9 * before  # nearly everything that existed is frozen
    assert left < 1_000  # what a full collection still walks: only what came after
