"""The report shows the interop matrix and, per adapter, where it deviates."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.cli import main

MUTANT = "harness.adapters.mutants:AcceptsReplays"


def test_report_shows_interop_matrix_and_deviations(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        main(["run", "--adapter", "reference", "--adapter", MUTANT, "--out", str(out), "--quiet"])
        == 1
    )
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    failed = {r["case"] for r in records if r["outcome"] == "FAIL"}
    # The replay bug shows alone and when the mutant verifies as the server against the
    # reference, never when the reference verifies.
    assert "verify-replay[ntlmv2]" in failed and "verify-replay[ntlmv2]@as-server" in failed
    assert "verify-replay[ntlmv2]@as-client" not in failed
    assert all(r["adapter"] == MUTANT for r in records if r["outcome"] == "FAIL")
    interop = [r for r in records if r["kind"] == "interop"]
    assert {(r["adapter"], r["peer"]) for r in interop} == {
        ("reference", MUTANT),
        (MUTANT, "reference"),
    }
    # The interop conversations are the pair's, in JUnit too: their own suite, and the
    # reference's suite stays clean although it was the client of a failing conversation.
    suites = {s.get("name"): s for s in ET.parse(out / "junit.xml").getroot().iter("testsuite")}
    assert {c.get("name") for c in suites["interop"].iter("testcase")} == {
        r["case"] for r in interop}
    assert suites["reference"].get("failures") == "0" and suites["reference"].get("errors") == "0"
    summary = json.loads((out / "summary.json").read_text())
    assert int(suites["interop"].get("tests", "0")) == sum(
        sum(c.values()) for c in summary["interop"].values())
    html = (out / "index.html").read_text()
    assert "Interop matrix" in html and "Deviations" in html
    deviations = html.split("<h2>Deviations</h2>", 1)[1].split("<h2>Matrix</h2>", 1)[0]
    assert "verify-replay[ntlmv2]@as-server" in deviations
