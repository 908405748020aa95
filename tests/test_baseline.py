"""Gating on a baseline: 0 when outcomes match, 1 on a regression or unexpected pass, 2 on a
broken baseline; `baseline update` records a run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.baseline import Baseline, Entry, load_baseline, review

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


def test_review_names_unknown_adapter_keys_in_one_line(tmp_path: Path) -> None:
    """A key no adapter answers to is a typo (exit 2 at the caller); a known adapter that is
    not in this run, by name or by path, is fine: one file may serve several CI jobs."""
    path = tmp_path / "b.json"
    entry = [{"case": "verify-replay[*]", "outcome": "FAIL", "reason": "r"}]
    path.write_text(json.dumps({"schema": "sspi-harness-baseline/1", "adapters": {
        MUTANT: entry, "pyspnego": entry, "harness.adapters.mutants:SignsReverseOrder": entry,
    }}))
    assert review(load_baseline(path), path, [MUTANT]).error == ""
    typos = Baseline({"refrence": [], "harness.adapters.mutants:NoSuchMutant": [], MUTANT: []})
    error = review(typos, path, [MUTANT]).error
    assert "'refrence'" in error and "'harness.adapters.mutants:NoSuchMutant'" in error
    assert f"'{MUTANT}'" not in error and "\n" not in error and str(path) in error


def test_review_warns_of_entries_that_match_no_case(tmp_path: Path) -> None:
    """Entries of the run's adapters that match none of its cases are stale, one line each;
    entries of adapters outside the run are not judged."""
    assert _run(tmp_path) == 1
    records = [json.loads(line)
               for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    baseline = Baseline({
        MUTANT: [Entry("verify-replay[*]", "FAIL", "matches"),
                 Entry("verify-replya[*]", "FAIL", "a typo"),
                 Entry("verify-replay[ntlmv2]", "FAIL", "exact, matches")],
        "pyspnego": [Entry("nothing-like-it", "FAIL", "another job's adapter")],
    })
    path = tmp_path / "b.json"
    result = review(baseline, path, [MUTANT], records)
    assert result.error == ""
    assert result.stale == [
        f"baseline {path}: adapters.{MUTANT}[1] 'verify-replya[*]' matches no case of this run "
        "(stale: remove it)"
    ]
    assert review(baseline, path, [MUTANT]).stale == []  # no records: nothing to compare with


def test_run_refuses_a_baseline_key_that_names_no_adapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    path = tmp_path / "typo.json"
    entry = {"case": "sanity*", "outcome": "FAIL", "reason": "typo in the adapter key"}
    path.write_text(
        json.dumps({"schema": "sspi-harness-baseline/1", "adapters": {"referenc": [entry]}})
    )
    code = main(["run", "--adapter", "reference", "--case", "sanity*", "--baseline", str(path),
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "'referenc'" in err and "\n" not in err
    assert not (tmp_path / "out" / "results.jsonl").exists()  # refused before running
