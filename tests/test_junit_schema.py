"""junit.xml from real runs validates against a JUnit schema (tests/schemas/junit.xsd, written
from the Ant/Jenkins descriptions of the format cited there), and its counts add up."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.report import write_junit

xmlschema = pytest.importorskip("xmlschema", reason="needs xmlschema (pip install xmlschema)")

SCHEMA = Path(__file__).resolve().parent / "schemas" / "junit.xsd"
REPLAYS = "harness.adapters.mutants:AcceptsReplays"
SEGFAULT = "harness.adapters.mutants:SegfaultsOnShortToken"
CASES = ["--case", "verify-replay*", "--case", "sign-token-too-small*", "--case", "sanity*",
         "--case", "sizes-*"]


@pytest.fixture(scope="module")
def schema() -> object:
    return xmlschema.XMLSchema(str(SCHEMA))


def _valid(schema: object, path: Path) -> ET.Element:
    schema.validate(str(path))  # type: ignore[attr-defined]  # raises with the first violation
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        for bucket in ("failure", "error", "skipped"):
            counted = sum(c.find(bucket) is not None for c in cases)
            assert int(suite.get(f"{bucket}s" if bucket != "skipped" else "skipped", "0")) == (
                counted), (suite.get("name"), bucket)
        for case in cases:
            assert case.get("classname") == suite.get("name")
    assert int(root.get("tests", "-1")) == sum(1 for _ in root.iter("testcase"))
    return root


def test_junit_of_a_real_run_with_failures_crashes_and_a_baseline(
    schema: object, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = ["run", "--adapter", "reference", "--adapter", REPLAYS, "--adapter", SEGFAULT,
           "--out", str(out), "--quiet", *CASES]
    assert main(run) == 1
    root = _valid(schema, out / "junit.xml")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    outcomes = {r["outcome"] for r in records}
    assert {"PASS", "FAIL", "CRASH"} <= outcomes  # failure and error elements both occur
    kinds = {child.tag for case in root.iter("testcase") for child in case}
    assert {"failure", "error"} <= kinds
    # One testcase per record: classname = adapter (or "interop" for a client × server
    # conversation), name = case id, failure message says what was expected and what came back.
    names = {(c.get("classname"), c.get("name")) for c in root.iter("testcase")}
    assert names == {("interop" if r["kind"] == "interop" else r["adapter"], r["case"])
                     for r in records}
    assert any(r["kind"] == "interop" for r in records)
    failure = next(c for c in root.iter("testcase")
                   if c.get("classname") == REPLAYS and c.get("name") == "verify-replay[ntlmv2]")
    element = failure.find("failure")
    assert element is not None
    assert element.get("message") == "expected SEC_E_OUT_OF_SEQUENCE, got SEC_E_OK"

    # Gated by a baseline: expected failures are skipped, an unexpected pass is a failure.
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", "update", "--from", str(out), "--out", str(baseline)]) == 0
    data = json.loads(baseline.read_text())
    data["adapters"].setdefault("reference", []).append(
        {"case": "verify-replay[ntlmv2]", "outcome": "FAIL", "reason": "pretend it was broken"})
    baseline.write_text(json.dumps(data))
    assert main([*run, "--baseline", str(baseline)]) == 1  # the XPASS fails the gate
    root = _valid(schema, out / "junit.xml")
    xpass = [c for c in root.iter("failure") if c.get("type") == "XPASS"]
    assert len(xpass) == 1
    assert root.find(".//skipped") is not None


def test_junit_with_hostile_text_stays_valid(schema: object, tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>\"'&\x00\x1b\ud800]]>"
    records = [
        {"case": hostile, "adapter": hostile, "outcome": outcome, "message": hostile,
         "expected": {"status": hostile}, "actual": {"status": 0x8009030F},
         "steps": [{"step": hostile, "ok": False, "detail": hostile}], "duration_s": "junk"}
        for outcome in ("FAIL", "ERROR", "CRASH", "TIMEOUT", "NON_STRICT", "UNSUPPORTED", "??")
    ]
    _valid(schema, write_junit(records, tmp_path / "junit.xml"))
    _valid(schema, write_junit([], tmp_path / "empty.xml"))


@pytest.mark.parametrize(
    "broken",
    [
        '<testsuites><testsuite name="a" tests="1"><testcase classname="a"/></testsuite>'
        "</testsuites>",  # a testcase needs a name
        '<testsuites><testsuite name="a" tests="-1"/></testsuites>',
        '<testsuites><testsuite name="a" tests="1"><testcase name="x" classname="a">'
        "<failure/><error/></testcase></testsuite></testsuites>",  # one result at most
        '<testsuites><testsuite name="a" tests="1"><testcase name="x" classname="a" '
        'time="-2"/></testsuite></testsuites>',
        '<testsuites><case name="x"/></testsuites>',
    ],
)
def test_the_schema_rejects_malformed_junit(schema: object, broken: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text(broken)
    assert not schema.is_valid(str(path))  # type: ignore[attr-defined]
