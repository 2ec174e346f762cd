"""The dynamic batcher (streamprint.runtime.batching): fairness, limits, errors, shutdown,
and that batched results equal unbatched ones (bit for bit where the backend allows)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.typing import NDArray
from runtime_helpers import analyzer, load_script, require_runtime

from streamprint.engine import dims
from streamprint.engine.analysis import FrameDescriptors, NumpyFrameAnalyzer
from streamprint.engine.fingerprint import REFERENCE_MODEL_VERSION, AudioBuffer, Fingerprint
from streamprint.engine.grid import FRAME_LENGTH
from streamprint.engine.session import AudioSession, SessionConfig
from streamprint.errors import InvalidInputError
from streamprint.runtime.batching import BatchingAnalyzer, split
from streamprint.runtime.manifest import SPECTRAL_VERSION

TIMEOUT = 30.0


class RecordingAnalyzer:
    """A row-wise fake: row i's ``rms`` is the frame's first sample; records every call's
    first samples (so a test can tell whose frames shared a call). Frames whose first
    sample is negative make the call fail."""

    name = "recording"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[list[float]] = []
        self._gate = gate
        self._lock = threading.Lock()

    def analyze(self, frames: NDArray[np.float32]) -> FrameDescriptors:
        if self._gate is not None:
            assert self._gate.wait(TIMEOUT)
        tags = [float(x) for x in frames[:, 0]]
        with self._lock:
            self.calls.append(tags)
        if any(t < 0 for t in tags):
            raise ValueError(f"bad frames {min(tags)}")
        n = frames.shape[0]
        col = frames[:, 0].astype(np.float64)
        return FrameDescriptors(
            rms=col, magnitude=np.zeros((n, 1), np.float32), centroid=col * 2, rolloff=col,
            flatness=col, chroma_concentration=col, mel_db=np.zeros((n, 2), np.float32),
            band_power=np.zeros((n, 8)), f0=col, voiced=np.ones(n, dtype=bool),
        )


def tagged(tag: float, n: int) -> NDArray[np.float32]:
    """``n`` frames whose first sample is ``tag`` + row / 1000."""
    frames = np.zeros((n, FRAME_LENGTH), np.float32)
    frames[:, 0] = tag + np.arange(n) / 1000.0
    return frames


def run_threads(targets: list[Callable[[], object]]) -> list[object]:
    """Run every target in its own thread; their results (or exceptions) in order."""
    results: list[object] = [None] * len(targets)

    def one(i: int) -> None:
        try:
            results[i] = targets[i]()
        except Exception as exc:  # handed back to the test
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a caller is stuck"
    return results


def working_callers(
    batcher: BatchingAnalyzer, requests: list[tuple[object, NDArray[np.float32]]]
) -> list[Callable[[], object]]:
    """One caller per request; all enter ``working`` before any submits, so the first batch
    goes only when every request is queued (deterministic composition)."""
    barrier = threading.Barrier(len(requests))

    def caller(key: object, frames: NDArray[np.float32]) -> Callable[[], object]:
        def run() -> object:
            with batcher.working():
                barrier.wait(TIMEOUT)
                return batcher.submit(frames, key)

        return run

    return [caller(k, f) for k, f in requests]


def session_of(call: list[float]) -> list[int]:
    return sorted({int(t) for t in call})


def test_one_step_per_session_per_batch_and_a_flooding_session_starves_no_one() -> None:
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=1000, max_wait_s=60.0)
    flood = [("A", tagged(1, 4)) for _ in range(5)]
    others = [("B", tagged(2, 4)), ("C", tagged(3, 4)), ("D", tagged(4, 4))]
    results = run_threads(working_callers(batcher, [*flood, *others]))
    assert all(isinstance(r, FrameDescriptors) for r in results)
    # A sent 5 requests at once: they need 5 batches, one each; B, C and D are in the first.
    assert len(inner.calls) == 5
    for call in inner.calls:
        tags = [int(t) for t in call]
        assert tags.count(1) == 4, "exactly one of A's requests (4 frames) per batch"
    assert session_of(inner.calls[0]) == [1, 2, 3, 4]
    assert batcher.requests == 8


def test_fifo_within_the_frame_budget() -> None:
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=10, max_wait_s=60.0)
    results = run_threads(working_callers(batcher, [(k, tagged(k, 4)) for k in range(1, 7)]))
    assert all(isinstance(r, FrameDescriptors) for r in results)
    sizes = [len(c) for c in inner.calls]
    assert sizes == [8, 8, 8], "4-frame requests, 10-frame budget: two per batch"
    served = [k for call in inner.calls for k in session_of(call)]
    assert sorted(served) == [1, 2, 3, 4, 5, 6]


def test_an_oversize_request_runs_alone_and_is_not_cut() -> None:
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=8, max_wait_s=60.0)
    (result,) = run_threads(working_callers(batcher, [("big", tagged(5, 20))]))
    assert isinstance(result, FrameDescriptors) and len(result) == 20
    assert [len(c) for c in inner.calls] == [20]


def test_rows_go_back_to_their_caller() -> None:
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=1000, max_wait_s=60.0)
    requests: list[tuple[object, NDArray[np.float32]]] = [(k, tagged(k, k)) for k in range(1, 9)]
    results = run_threads(working_callers(batcher, requests))
    assert len(inner.calls) == 1
    for (_, frames), result in zip(requests, results, strict=True):
        assert isinstance(result, FrameDescriptors)
        np.testing.assert_array_equal(result.rms, frames[:, 0].astype(np.float64))
        np.testing.assert_array_equal(result.centroid, 2 * frames[:, 0].astype(np.float64))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


def test_max_wait_is_honoured() -> None:
    """The leader sends when ``max_wait`` has passed since its request arrived (a fake clock:
    the logic, not the timing), taking whoever joined meanwhile."""
    clock = FakeClock()
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=1000, max_wait_s=0.010, clock=clock)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.submit, tagged(1, 3), "A")
        wait_until(lambda: batcher.queued == 1)
        clock.now = 0.009
        second = pool.submit(batcher.submit, tagged(2, 3), "B")
        wait_until(lambda: batcher.queued == 2)
        time.sleep(0.05)
        assert inner.calls == [], "sent before max_wait had passed"
        clock.now = 0.0101
        with batcher.working():  # wakes the leader, which looks at the clock again
            pass
        first.result(TIMEOUT)
        second.result(TIMEOUT)
    assert [session_of(c) for c in inner.calls] == [[1, 2]]


def test_a_full_batch_goes_without_waiting() -> None:
    clock = FakeClock()
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=6, max_wait_s=60.0, clock=clock)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.submit, tagged(1, 3), "A")
        wait_until(lambda: batcher.queued == 1)
        second = pool.submit(batcher.submit, tagged(2, 3), "B")
        first.result(TIMEOUT)
        second.result(TIMEOUT)
    assert clock.now == 0.0
    assert [session_of(c) for c in inner.calls] == [[1, 2]]


def test_work_conserving_a_lone_stream_does_not_wait() -> None:
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=1000, max_wait_s=3600.0)
    with batcher.working():
        result = batcher.submit(tagged(1, 3), "A")  # the only working thread: goes at once
    assert len(result) == 3 and batcher.batches == 1


def test_max_wait_zero_sends_at_once() -> None:
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=1000, max_wait_s=0.0)
    assert len(batcher.analyze(tagged(1, 2))) == 2


def test_an_error_reaches_only_its_caller() -> None:
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=1000, max_wait_s=60.0)
    requests: list[tuple[object, NDArray[np.float32]]] = [
        ("A", tagged(1, 3)), ("bad", tagged(-5, 2)), ("C", tagged(3, 3))
    ]
    results = run_threads(working_callers(batcher, requests))
    assert isinstance(results[1], ValueError) and "bad frames" in str(results[1])
    for i in (0, 2):
        result = results[i]
        assert isinstance(result, FrameDescriptors)
        np.testing.assert_array_equal(result.rms, requests[i][1][:, 0].astype(np.float64))
    # the shared call failed, then each request ran alone
    assert len(inner.calls) == 4 and len(inner.calls[0]) == 8


def test_bad_shapes_are_refused_before_queueing() -> None:
    batcher = BatchingAnalyzer(RecordingAnalyzer(), max_batch_frames=10, max_wait_s=60.0)
    with pytest.raises(InvalidInputError):
        batcher.analyze(np.zeros((3, 100), np.float32))
    assert batcher.queued == 0
    with pytest.raises(InvalidInputError):
        BatchingAnalyzer(RecordingAnalyzer(), max_batch_frames=0)


def test_close_sends_queued_requests_and_later_calls_run_unbatched() -> None:
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=1000, max_wait_s=3600.0)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.submit, tagged(k, 2), k) for k in (1, 2, 3)]
        wait_until(lambda: batcher.queued == 3)
        assert inner.calls == []
        batcher.close()
        results = [f.result(TIMEOUT) for f in futures]
    assert all(len(r) == 2 for r in results)
    assert [session_of(c) for c in inner.calls] == [[1, 2, 3]]
    assert len(batcher.analyze(tagged(4, 5))) == 5
    assert batcher.batches == 1 and len(inner.calls) == 2  # the late call ran directly
    batcher.close()  # idempotent


def test_no_deadlock_with_fewer_threads_than_sessions() -> None:
    """16 sessions' work on a 2-thread pool, every work item in a ``working`` scope."""
    inner = RecordingAnalyzer()
    batcher = BatchingAnalyzer(inner, max_batch_frames=64, max_wait_s=0.5)
    sessions = [batcher.bind() for _ in range(16)]

    def step(i: int, j: int) -> float:
        with batcher.working():
            return float(sessions[i].analyze(tagged(i, 1 + j % 5)).rms[0])

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(step, i, j) for j in range(4) for i in range(16)]
        values = [f.result(TIMEOUT) for f in futures]
    assert values == [float(i) for _ in range(4) for i in range(16)]
    assert batcher.requests == 64


def test_split_copies_rows() -> None:
    whole = NumpyFrameAnalyzer().analyze(tagged(0.1, 5))
    first, second = split(whole, [2, 3])
    assert len(first) == 2 and len(second) == 3
    assert not np.shares_memory(second.magnitude, whole.magnitude)
    np.testing.assert_array_equal(second.mel_db, whole.mel_db[2:])


def test_split_carries_the_learned_heads_inputs() -> None:
    """With learned heads the analyzer's descriptors carry head inputs: a batch's pieces get
    their own rows of them, equal to analysing each piece alone."""
    from streamprint.runtime.heads import HeadsAnalyzer, load_heads_runner
    from streamprint.runtime.numpy_backend import NumpyAnalyzer

    heads_analyzer = HeadsAnalyzer(NumpyAnalyzer(), load_heads_runner("numpy"))
    frames = music_frames(3, 7)
    first, second = split(heads_analyzer.analyze(frames), [3, 4])
    alone = heads_analyzer.analyze(frames[3:])
    assert first.heads is not None and second.heads is not None and alone.heads is not None
    assert len(first.heads.energy) == 3 and second.heads.runner is alone.heads.runner
    for name in ("log_mag", "power", "pitch", "energy", "loud"):
        got, want = getattr(second.heads, name), getattr(alone.heads, name)
        assert (got is None) == (want is None), name
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)


# ---------------------------------------------------------------------------- real backends

BACKENDS = ("numpy", "onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8")
#: Backends whose rows do not depend on the other rows of a call, bit for bit (measured;
#: numpy's BLAS and ONNX Runtime's MLAS choose matmul kernels by the row count).
ROW_INDEPENDENT = ("openvino/fp32", "openvino/int8")


def music_signal(seed: int, samples: int) -> NDArray[np.float64]:
    """Harmonic tones with random fundamentals plus a little noise, 22,050 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 22050.0
    x = sum(0.2 / k * np.sin(2 * np.pi * rng.uniform(80, 900) * k * t) for k in range(1, 6))
    return np.asarray(x + 0.03 * rng.standard_normal(samples))


def music_frames(seed: int, n: int) -> NDArray[np.float32]:
    x = music_signal(seed, n * 512 + FRAME_LENGTH)
    view = np.lib.stride_tricks.sliding_window_view(x, FRAME_LENGTH)[::512][:n]
    return np.ascontiguousarray(view, dtype=np.float32)


@pytest.mark.parametrize("key", BACKENDS)
def test_batched_rows_equal_unbatched(key: str) -> None:
    inner = analyzer(key)
    batcher = BatchingAnalyzer(inner, max_batch_frames=1000, max_wait_s=60.0)
    sizes = [43, 1, 7, 43, 20, 2, 43, 13]
    requests: list[tuple[object, NDArray[np.float32]]] = [
        (i, music_frames(i, n)) for i, n in enumerate(sizes)
    ]
    results = run_threads(working_callers(batcher, requests))
    assert batcher.batches == 1
    for (_, frames), got in zip(requests, results, strict=True):
        assert isinstance(got, FrameDescriptors)
        want = inner.analyze(frames)
        for f in dataclasses.fields(FrameDescriptors):
            a, b = getattr(got, f.name), getattr(want, f.name)
            if f.name == "heads":  # head inputs: test_split_carries_the_learned_heads_inputs
                assert a is None and b is None
            elif key in ROW_INDEPENDENT or f.name in ("rms", "magnitude", "f0", "voiced"):
                np.testing.assert_array_equal(a, b, err_msg=f"{key} {f.name}")
            else:  # last-bit differences of the matmuls only
                np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-5, err_msg=f"{key} {f.name}")


def stream(buffer: AudioBuffer, analyzer_: object) -> tuple[list[Fingerprint], Fingerprint]:
    session = AudioSession(
        SessionConfig(buffer.sample_rate, buffer.channels, dims.AUDIO_25D, update_interval_s=1.0),
        analyzer=analyzer_,  # type: ignore[arg-type]
    )
    updates: list[Fingerprint] = []
    step = buffer.sample_rate // 10
    for start in range(0, buffer.samples.shape[0], step):
        updates += session.push(buffer.samples[start : start + step])
    return updates, session.finish()


@pytest.mark.parametrize("key", ["numpy", "openvino/fp32"])
def test_sessions_in_threads_get_the_unbatched_fingerprints(key: str) -> None:
    """Six sessions stream side by side through one batcher on a 3-thread pool; every update
    and final equals the unbatched session's (bit for bit on a row-independent backend,
    within a millionth of a tolerance unit on numpy)."""
    inner = analyzer(key)
    batcher = BatchingAnalyzer(inner, max_batch_frames=128, max_wait_s=0.02)
    buffers = [
        AudioBuffer(np.stack([music_signal(s, 4 * 22050)] * 2, axis=1).astype(np.float32), 22050)
        for s in range(6)
    ]
    solo = [stream(b, inner) for b in buffers]

    def run(i: int) -> tuple[list[Fingerprint], Fingerprint]:
        with batcher.working():
            return stream(buffers[i], batcher.bind())

    with ThreadPoolExecutor(3) as pool:
        batched = list(pool.map(run, range(6)))
    assert batcher.requests > batcher.batches, "no batch was ever shared"
    for (su, sf), (bu, bf) in zip(solo, batched, strict=True):
        assert len(su) == len(bu)
        for a, b in zip([*su, sf], [*bu, bf], strict=True):
            assert a.revision == b.revision and a.model == b.model
            if key in ROW_INDEPENDENT:
                assert a.values == b.values and a.confidence == b.confidence
            else:
                for name in a.values:
                    tol = dims.get(name).tolerance_for(a.values[name])
                    assert abs(a.values[name] - b.values[name]) <= 1e-6 * tol, name


def test_bench_batching_runs_both_modes_on_the_same_work(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script("bench_batching")
    code = bench.main([
        "--backends", "numpy", "--inference", "2", "--streams", "2", "--paced", "",
        "--seconds", "1", "--repeat", "1", "--json",
    ])
    assert code == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert {(r["mode"], r["batching"]) for r in rows} == {
        (m, b) for m in ("inference", "saturated") for b in (True, False)
    }
    for mode in ("inference", "saturated"):
        on, off = (next(r for r in rows if r["mode"] == mode and r["batching"] is b) for b in (True, False))
        assert off["frames_per_call"] <= 43 and on["frames_per_call"] >= off["frames_per_call"]


@pytest.mark.parametrize("key", ["onnxruntime/fp32", "numpy"])
def test_fingerprints_carry_the_model_and_version_that_computed_them(key: str) -> None:
    """Directly and through the batcher, a fingerprint names the analyzer's model and its
    version (the spectral model's manifest version for a graph backend)."""
    if key != "numpy":
        require_runtime(key.split("/")[0])
    inner = analyzer(key)
    want = getattr(inner, "version", REFERENCE_MODEL_VERSION)
    assert want == (SPECTRAL_VERSION if key != "numpy" else REFERENCE_MODEL_VERSION)
    batcher = BatchingAnalyzer(inner, max_batch_frames=64, max_wait_s=0.0)
    assert (batcher.name, batcher.version) == (inner.name, want)
    audio = AudioBuffer(np.stack([music_signal(0, 2 * 22050)] * 2, axis=1).astype(np.float32), 22050)
    with batcher.working():
        updates, final = stream(audio, batcher.bind())
    _, direct = stream(audio, inner)
    for fp in (*updates, final, direct):
        assert (fp.model, fp.model_version) == (inner.name, want)
