"""The command line: the output contract, exit codes, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main


def _run(*argv: str) -> int:
    return main(list(argv))


def test_run_writes_the_output_contract(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run("run", "--adapter", "reference", "--out", str(out), "--quiet") == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert records and all(r["outcome"] == "PASS" for r in records)  # regressions included
    for key in ("case", "adapter", "outcome", "expected", "actual", "duration_s"):
        assert all(key in r for r in records)
    conformance = [r for r in records if r["kind"] == "conformance"]
    assert conformance[0]["case"] == "sanity[start]" and conformance[-1]["case"] == "sanity[end]"
    # then the fuzz findings kept as regression vectors are replayed
    regressions = [r for r in records if r["kind"] == "regression"]
    assert regressions and all(r["outcome"] == "PASS" for r in regressions)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["adapters"]["reference"]["PASS"] == len(records)
    suites = ET.parse(out / "junit.xml").getroot()
    assert int(suites.find("testsuite").get("tests")) == len(records)  # type: ignore[union-attr]
    html = (out / "index.html").read_text()
    assert "sign-tamper-data[ntlmv2]" in html


def test_resume_runs_only_missing_cases_and_keeps_old_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        _run("run", "--adapter", "reference", "--out", str(out), "--quiet", "--case", "sign-*") == 0
    )
    first = (out / "results.jsonl").read_text().splitlines()
    # Simulate a run killed mid-write: a torn last line is dropped on resume.
    with (out / "results.jsonl").open("a") as handle:
        handle.write('{"case": "torn')
    assert (
        _run(
            "run",
            "--adapter",
            "reference",
            "--out",
            str(out),
            "--quiet",
            "--case",
            "sign-*",
            "--case",
            "seal-*",
            "--resume",
        )
        == 0
    )
    lines = (out / "results.jsonl").read_text().splitlines()
    assert lines[: len(first)] == first
    cases = [json.loads(line)["case"] for line in lines]
    assert len(cases) == len(set(cases))
    assert any(c.startswith("seal-") for c in cases)
    # Without --resume, the old results are renamed, not overwritten.
    assert (
        _run("run", "--adapter", "reference", "--out", str(out), "--quiet", "--case", "sanity*")
        == 0
    )
    assert len(list(out.glob("results-*.jsonl"))) == 1


def test_list_prints_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("run", "--list") == 0
    out = capsys.readouterr().out
    assert "sign-tamper-data[ntlmv2]" in out and "cases from" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--adapter", "nope"], "unknown adapter 'nope'"),
        (["run", "--adapter", "os:path"], "not an Adapter subclass"),
        (["run", "--adapter", "no.such.module:Thing"], "cannot import"),
        (["run", "--bogus"], "unrecognized arguments"),
        (["run", "--profile", "linux"], "invalid choice"),
        (["run", "--case", "no-such-case*"], "no case matches"),
        (["run", "--properties", "0"], "argument --properties: '0' is not positive"),
        (["run", "--properties", "-3"], "argument --properties: '-3' is not positive"),
        (["vectors", "lint", "missing.json"], "does not exist"),
        (["vectors", "lint", "vectors"], "vector file vectors is a folder"),
        (["vectors", "check", "vectors"], "vector file vectors is a folder"),
        (["vectors", "check", "--adapter", "nope"], "unknown adapter"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(*argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_out_that_is_a_file_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("keep me")
    assert _run("run", "--adapter", "reference", "--out", str(target)) == 2
    assert target.read_text() == "keep me"


def test_malformed_vector_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "ntlm_seal_test.json"
    bad.write_text("{not json")
    assert _run("vectors", "check", str(bad)) == 2
    err = capsys.readouterr().err
    assert "ntlm_seal_test.json" in err and err.count("\n") == 1


def test_vectors_lint_and_check_print_their_summary_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("vectors", "lint") == 0
    captured = capsys.readouterr()
    assert re.fullmatch(r"\d+ files, 0 problems\n", captured.out) and captured.err == ""
    assert _run("vectors", "check", "--adapter", "reference") == 0
    captured = capsys.readouterr()
    assert re.search(r"^PASS \d+ of \d+ vectors$", captured.out, re.M) and captured.err == ""
    bad = tmp_path / "ntlm_seal_test.json"
    bad.write_text("{not json")
    assert _run("vectors", "lint", str(bad)) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "1 files, 1 problems"


def test_adapters_lists_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("adapters") == 0
    out = capsys.readouterr().out
    assert "reference" in out and "available" in out and "readonly-with-checksum" in out


def test_console_script_exit_code_and_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--adapter", "missing"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("sspi-harness: error: unknown adapter 'missing'")
    assert "Traceback" not in proc.stderr


def test_reproducer_command_selects_exactly_its_case(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run("run", "--adapter", "reference", "--out", str(out), "--quiet") == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for record in (records[0], records[5]):
        argv = record["reproducer"].split()[1:]
        argv = [a.strip("'") for a in argv]
        again = tmp_path / record["case"].replace("[", "_").replace("]", "_")
        assert _run(*argv, "--out", str(again), "--quiet") == 0
        lines = (again / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["case"] for line in lines] == [record["case"]]


def test_mutants_command_reports_the_score(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("mutants", "mutant-accepts-replays") == 0
    out = capsys.readouterr().out
    assert "mutant-accepts-replays" in out and "killed" in out and "1/1 killed (100.0%)" in out
    assert _run("mutants", "mutant-nope") == 2


def test_property_phase_adds_a_record(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = _run(
        "run",
        "--adapter",
        "reference",
        "--no-peers",
        "--properties",
        "20",
        "--case",
        "sanity*",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    (prop,) = [r for r in records if r["kind"] == "properties"]
    assert prop["case"] == "properties[alone]" and prop["outcome"] == "PASS"


def _run_piped(*argv: str, interval_s: float) -> subprocess.CompletedProcess[str]:
    """The command in a subprocess whose stderr is a pipe (no terminal, as in CI), with the
    plain progress interval set to ``interval_s``."""
    code = (
        "import sys, harness.cli as cli; "
        f"cli.PLAIN_INTERVAL_S = {interval_s}; sys.exit(cli.main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False,
        timeout=300,
    )


def test_progress_is_a_plain_line_on_stderr_without_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ("run", "--adapter", "reference", "--case", "sign-*", "--no-peers", "--out", str(out))
    proc = _run_piped(*argv, interval_s=0.0)
    assert proc.returncode == 0, proc.stderr
    records = (out / "results.jsonl").read_text().splitlines()
    lines = [line for line in proc.stderr.splitlines() if line.startswith("cases ")]
    assert len(lines) == len(records) > 10  # interval 0: one line per case
    pattern = r"cases (\d+)/(\d+)  \d+ s elapsed  ETA (\d+ s|\d+:\d\d)  reference sign-\S+"
    counts = [re.fullmatch(pattern, line) for line in lines]
    assert all(counts), lines[:3]
    assert [int(m.group(1)) for m in counts if m] == list(range(1, len(records) + 1))
    assert {int(m.group(2)) for m in counts if m} == {len(records)}
    assert lines[-1].split("  ")[2] == "ETA 0 s"
    # --quiet: nothing but errors; a long interval: the first case's line only.
    quiet = _run_piped(*argv, "--quiet", interval_s=0.0)
    assert quiet.returncode == 0 and "cases " not in quiet.stderr
    sparse = _run_piped(*argv, interval_s=3600.0)
    shown = [line for line in sparse.stderr.splitlines() if line.startswith("cases ")]
    assert len(shown) == 1 and shown[0].startswith(f"cases 1/{len(records)}  ")


def test_ticker_is_due_first_then_once_per_interval() -> None:
    import time

    from harness.cli import Ticker

    ticker = Ticker(0.2)
    assert ticker.due() and not ticker.due()
    time.sleep(0.25)
    assert ticker.due() and not ticker.due()
