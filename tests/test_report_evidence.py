"""The report's Deviations view (grouped by scenario family, regression replays included) and
the Windows evidence: per step in the drill-down, for NON_STRICT cases of a windows-profile run,
and the catalogue's "Where the windows profile differs"."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.cli import main
from harness.report import summarize
from harness.report.evidence import NO_WINDOWS_EVIDENCE, windows_differences
from harness.report.html import FAMILY_SHOWN, render_html
from harness.scenarios.loader import load_scenarios

WINE = "Wine dlls/secur32/tests/ntlm.c testAuth"
HOSTILE = "<script>alert(1)</script>"


def _rec(case: str, adapter: str, outcome: str, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"case": case, "scenario": case.split("[")[0], "adapter": adapter,
                           "kind": "conformance", "outcome": outcome, "profile": "documented",
                           "message": f"{outcome} of {case}"}
    rec.update(extra)
    return rec


def _html(records: list[dict[str, Any]], profile: str = "documented") -> str:
    summary = summarize(records, started="", finished="", duration_s=0.0, profile=profile)
    return render_html(records, summary)


def _section(html: str, section_id: str) -> str:
    return html.split(f'<section id="{section_id}">', 1)[1].split("</section>", 1)[0]


def _blob(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html,
                      re.DOTALL)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _families(deviations: str, adapter: str) -> dict[str, str]:
    """family name -> its <details> markup, for one adapter's part of the Deviations."""
    part = deviations.split(f"<h3>{adapter} ", 1)[1].split("<h3>", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(
        r'<details class="family">\s*<summary><code>([^<]*)</code>.*?</details>', part, re.S)}


def test_deviations_are_grouped_by_family_with_regressions_and_without_interop() -> None:
    many = [_rec(f"verify-replay[ntlmv2,n={i}]", "pyspnego", "FAIL")
            for i in range(FAMILY_SHOWN + 5)]
    records = [
        *many,
        _rec("verify-replay[ntlmv1]", "pyspnego", "CRASH"),
        _rec("verify-replay[ntlmv1]@as-server", "pyspnego", "NON_STRICT", kind="vs-reference"),
        _rec("seal-short[ntlmv2]", "pyspnego", "PASS"),
        _rec("seal-short[ntlmv1]", "pyspnego", "UNSUPPORTED"),
        _rec("regression[handshake-b354b6798b19]", "pyspnego", "ERROR", kind="regression",
             scenario="regression"),
        _rec("regression[descriptor-b28a8e892e3b]", "native", "CRASH", kind="regression",
             scenario="regression"),
        _rec("sanity[start]@client=pyspnego,server=native", "pyspnego", "FAIL", kind="interop",
             peer="native", role="client"),
    ]
    html = _html(records)
    deviations = _section(html, "deviations")
    assert "<h3>pyspnego <span class=\"meta\">18 cases in 2 families</span></h3>" in deviations
    families = _families(deviations, "pyspnego")
    assert list(families) == ["verify-replay", "regression"]  # a CRASH family comes first
    replay = families["verify-replay"]
    for badge in (f"FAIL {FAMILY_SHOWN + 5}", "CRASH 1", "NON_STRICT 1"):
        assert badge in replay
    assert replay.count("<li>") == FAMILY_SHOWN
    assert replay.index("verify-replay[ntlmv1]<") < replay.index("verify-replay[ntlmv2,n=0]")
    assert f'show all {FAMILY_SHOWN + 7}' in replay
    assert "ERROR 1" in families["regression"]
    assert "regression[handshake-b354b6798b19]" in families["regression"]
    assert "regression[descriptor-b28a8e892e3b]" in _families(deviations, "native")["regression"]
    assert "sanity[start]@client" not in deviations and "seal-short" not in deviations
    # "show all" lists every case of the family, from the blob, by record index.
    group = int(re.search(r'data-group="(\d+)"', replay).group(1))  # type: ignore[union-attr]
    data = _blob(html)
    cases = {data["r"][i][0] or "(same)" for i in data["dev"][group]}
    assert len(data["dev"][group]) == FAMILY_SHOWN + 7 and "(same)" not in cases


def test_step_evidence_from_the_record_or_the_catalogue() -> None:
    """Step rows carry [[profile, text], …]; the result says which step decided and whether it
    has Windows evidence. Records without evidence get the catalogue's."""
    steps = [
        {"step": "0:sizes/client", "status": "SEC_E_OK", "expected": "SEC_E_OK", "ok": True,
         "detail": "", "evidence": {"windows": f"{WINE} {HOSTILE}", "documented": "the page"}},
        {"step": "1:sizes/server", "status": "SEC_E_OK", "expected": "SEC_E_OK", "ok": True,
         "detail": ""},
    ]
    with_evidence = _rec("sizes-x[ntlmv2]", "reference", "NON_STRICT", steps=steps,
                         expected={"step": "0:sizes/client", "status": "SEC_E_OK"})
    undecided = _rec("sizes-y[ntlmv2]", "reference", "PASS", steps=steps,
                     expected={"step": "1:sizes/server", "status": "SEC_E_OK"})
    old = _rec("sizes-without-integrity[ntlmv2]", "native", "PASS",
               steps=[{k: v for k, v in s.items() if k != "evidence"} for s in steps],
               expected={"step": "0:sizes/client", "status": "SEC_E_OK"})
    data = _blob(_html([with_evidence, undecided, old]))
    table = data["t"]
    results = {row[0]: table[row[2]] for row in data["r"]}
    mine = results["sizes-x[ntlmv2]"]
    assert table[mine[5][0][5]] == [["documented", "the page"], ["windows", f"{WINE} {HOSTILE}"]]
    assert len(mine[5][1]) == 5  # no evidence, no sixth element
    assert mine[6:] == [0, 0]  # decided by step 0, which has Windows evidence
    assert results["sizes-y[ntlmv2]"][6:] == [1, 1]  # step 1 has none: the sentence shows
    catalogued = results["sizes-without-integrity[ntlmv2]"]
    assert table[catalogued[5][0][5]][0][0] == "windows"
    assert table[catalogued[5][0][5]][0][1].startswith(WINE)
    assert data["noWindows"] == NO_WINDOWS_EVIDENCE


def test_windows_non_strict_deviations_say_why(tmp_path: Path) -> None:
    """A real windows-profile run: the reference reports cbMaxSignature 0 without integrity,
    which only the documented profile allows; its Deviations entry quotes the evidence."""
    out = tmp_path / "windows"
    assert main(["run", "--adapter", "reference", "--profile", "windows", "--quiet", "--case",
                 "sizes-without-integrity*", "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["outcome"] for r in records} == {"NON_STRICT"}
    html = (out / "index.html").read_text()
    listed = _families(_section(html, "deviations"), "reference")["sizes-without-integrity"]
    assert f'<span class="why">Why (windows profile): {WINE}' in listed
    # The same records in a documented-profile report carry no such line.
    documented = [{**r, "profile": "documented"} for r in records]
    assert "Why (windows profile)" not in _section(_html(documented), "deviations")
    # Hostile evidence in a record is escaped, and a NON_STRICT record whose deciding step
    # has no Windows evidence says so.
    hostile = _rec("sizes-z[ntlmv2]", "reference", "NON_STRICT", profile="windows",
                   expected={"step": "0:sizes/client"},
                   steps=[{"step": "0:sizes/client", "ok": False,
                           "evidence": {"documented": HOSTILE}}])
    listed = _families(_section(_html([hostile], "windows"), "deviations"), "reference")
    assert "Why (documented profile): &lt;script&gt;alert(1)&lt;/script&gt;" in listed["sizes-z"]
    assert NO_WINDOWS_EVIDENCE in listed["sizes-z"]


def test_where_the_windows_profile_differs_is_in_both_profiles() -> None:
    rows = windows_differences(load_scenarios())
    assert rows and all(r["documented"] != r["windows"] for r in rows)
    by_step = {(r["scenario"], r["step"]): r for r in rows}
    sizes = by_step[("sizes-without-integrity", "0:sizes/client")]
    assert sizes["documented"] == "SEC_E_OK, cbMaxSignature = 0, cbSecurityTrailer = 0"
    assert sizes["windows"] == "SEC_E_OK, cbMaxSignature = 16, cbSecurityTrailer = 16"
    assert sizes["evidence"].startswith(WINE)
    assert by_step[("sizes-max-token", "0:sizes/client")]["documented"] == (
        "SEC_E_OK, cbMaxToken not checked")
    status = by_step[("no-integrity-verify-dummy", "0:verify/server")]
    assert (status["documented"], status["windows"]) == ("SEC_E_QOP_NOT_SUPPORTED", "SEC_E_OK")
    assert not any(r["scenario"] == "sanity" for r in rows)
    for profile in ("documented", "windows"):
        section = _section(_html([_rec("x[ntlmv2]", "a", "PASS")], profile), "windows-differs")
        assert section.count("<tr><td>") == len(rows)
        assert "<code>sizes-without-integrity</code>" in section and WINE in section
