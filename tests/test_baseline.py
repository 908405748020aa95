"""Gating on a baseline: 0 when outcomes match, 1 on a regression or unexpected pass, 2 on a
broken baseline; `baseline update` records a run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main

MUTANT = "harness.adapters.mutants:AcceptsReplays"
RUN = ["run", "--adapter", MUTANT, "--no-peers", "--quiet", "--case", "verify-re*"]


def _run(tmp_path: Path, *extra: str) -> int:
    return main([*RUN, "--out", str(tmp_path / "run"), *extra])


def test_baseline_round_trip_and_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path) == 1  # the mutant accepts replays: failures
    baseline = tmp_path / "baseline.json"
    assert (
        main(["baseline", "update", "--from", str(tmp_path / "run"), "--out", str(baseline)]) == 0
    )
    data = json.loads(baseline.read_text())
    entries = data["adapters"][MUTANT]
    assert entries and all(e["outcome"] == "FAIL" for e in entries)

    assert _run(tmp_path, "--baseline", str(baseline)) == 0  # same outcomes: the gate passes
    junit = ET.parse(tmp_path / "run" / "junit.xml").getroot()
    assert junit.find(".//failure") is None and junit.find(".//skipped") is not None

    # Expect a different outcome for one case: that case is now a regression.
    entries[0]["outcome"] = "CRASH"
    baseline.write_text(json.dumps(data))
    capsys.readouterr()
    assert _run(tmp_path, "--baseline", str(baseline)) == 1
    assert "REGRESSION" in capsys.readouterr().err

    # A failure the baseline expects on a case that now passes is an unexpected pass.
    entries[0]["outcome"] = "FAIL"
    entries.append({"case": "sanity*", "outcome": "FAIL", "reason": "pretend it was broken"})
    baseline.write_text(json.dumps(data))
    assert (
        main([*RUN[:-1], "sanity*", "--out", str(tmp_path / "r2"), "--baseline", str(baseline)])
        == 1
    )
    assert "XPASS" in capsys.readouterr().err


def test_reasons_survive_an_update(tmp_path: Path) -> None:
    assert _run(tmp_path) == 1
    baseline = tmp_path / "b.json"
    main(["baseline", "update", "--from", str(tmp_path / "run"), "--out", str(baseline)])
    data = json.loads(baseline.read_text())
    data["adapters"][MUTANT][0]["reason"] = "reviewed: accepts replays (bug 42)"
    baseline.write_text(json.dumps(data))
    main(["baseline", "update", "--from", str(tmp_path / "run"), "--out", str(baseline)])
    again = json.loads(baseline.read_text())
    assert again["adapters"][MUTANT][0]["reason"] == "reviewed: accepts replays (bug 42)"


def test_a_list_of_outcomes_accepts_any_of_them(tmp_path: Path) -> None:
    """For non-deterministic behaviour (a use-after-free) a baseline entry lists the outcomes
    it accepts; the gate passes on any of them, fails on another, and an update keeps the list."""
    assert _run(tmp_path) == 1
    baseline = tmp_path / "b.json"
    main(["baseline", "update", "--from", str(tmp_path / "run"), "--out", str(baseline)])
    data = json.loads(baseline.read_text())
    for entry in data["adapters"][MUTANT]:
        entry["outcome"] = ["TIMEOUT", "FAIL"]
    baseline.write_text(json.dumps(data))
    assert _run(tmp_path, "--baseline", str(baseline)) == 0
    main(["baseline", "update", "--from", str(tmp_path / "run"), "--out", str(baseline)])
    kept = json.loads(baseline.read_text())["adapters"][MUTANT]
    assert all(e["outcome"] == ["TIMEOUT", "FAIL"] for e in kept)

    for entry in data["adapters"][MUTANT]:
        entry["outcome"] = ["TIMEOUT", "CRASH"]  # FAIL is no longer accepted
    baseline.write_text(json.dumps(data))
    assert _run(tmp_path, "--baseline", str(baseline)) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "other"}', "'schema' must be"),
        (
            '{"schema": "sspi-harness-baseline/1", "adapters": {"x": [{"case": "a"}]}}',
            "needs exactly 'case', 'outcome' and 'reason'",
        ),
        (
            '{"schema": "sspi-harness-baseline/1", "adapters": {"x": '
            '[{"case": "a", "outcome": "MAYBE", "reason": "r"}]}}',
            "is not an outcome",
        ),
        (
            '{"schema": "sspi-harness-baseline/1", "adapters": {"x": '
            '[{"case": "a", "outcome": [], "reason": "r"}]}}',
            "at least one outcome",
        ),
        (
            '{"schema": "sspi-harness-baseline/1", "adapters": {"x": '
            '[{"case": "a", "outcome": "FAIL", "reason": " "}]}}',
            "needs a reason",
        ),
    ],
)
def test_broken_baseline_is_exit_2_one_line(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "b.json"
    baseline.write_text(content)
    assert _run(tmp_path, "--baseline", str(baseline)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # nothing ran, nothing was written


def test_missing_baseline_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, "--baseline", str(tmp_path / "none.json")) == 2
    assert "none.json" in capsys.readouterr().err
