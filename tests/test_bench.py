"""`sspi-harness bench`: the measures run for real and report ratios with their targets; the
bare loops do the same work as what they are compared with. Times are never asserted (the
machines are shared and noisy): only that the measures are sound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "nope"], "invalid choice: 'nope'"),
        (["--fuzz-adapter", "nope"], "unknown adapter 'nope'"),
        (["--fuzz-seconds", "0"], "'0' is not positive"),
    ],
)
def test_bad_options_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_overhead_bench_replays_the_same_calls_and_prints_its_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # measure_overhead raises when the bare replay's statuses differ from the run's: the
    # bare loop really makes the run's calls, with the same results.
    out = tmp_path / "bench.json"
    assert main(["bench", "--only", "overhead", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "harness overhead: run / bare loop (reference)" in printed
    assert "target <= 1.1" in printed and "targets met" in printed
    (row,) = json.loads(out.read_text())["rows"]
    assert row["figure"] > 0 and row["target"] == 1.1 and row["met"] == (row["figure"] <= 1.1)
    assert " cases, " in row["detail"] and "adapter calls" in row["detail"]


def test_recording_and_replay_see_the_same_statuses() -> None:
    from harness.adapters.reference import ReferenceAdapter
    from harness.bench.overhead import CallLog, fresh_copies, recording, replay
    from harness.fuzzing.targets import FIXED_RANDOMNESS
    from harness.runner.engine import plan, run_adapter
    from harness.runner.store import ResultStore
    from harness.scenarios.loader import load_catalogue

    class Fixed(ReferenceAdapter):
        def __init__(self) -> None:
            super().__init__(randomness=FIXED_RANDOMNESS)

    planned = [p for p in plan(load_catalogue()) if p.id.startswith(("verify-replay", "seal"))]
    log = CallLog()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp), resume=False)
        run_adapter("reference", recording(Fixed, log), planned, store, profile="documented")
        store.close()
    assert log.statuses and any(s not in (0, None) for s in log.statuses)  # failures too
    statuses: list[int | None] = []
    replay(Fixed(), fresh_copies(log.calls), statuses)
    assert statuses == log.statuses


@pytest.mark.parametrize("op", ["sign", "verify", "seal", "unseal"])
def test_throughput_measures_accepted_messages(op: str) -> None:
    from harness.bench.throughput import pyspnego_rate, reference_rate

    # each raises when a call fails: a benchmark of rejections would measure the wrong path
    assert reference_rate(op, 64, 50) > 0
    assert pyspnego_rate(op, 64, 50) > 0
