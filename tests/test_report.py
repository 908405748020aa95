"""Reporting layer: counts agree across formats, and hostile adapter text cannot inject markup."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.report import summarize, write_html, write_junit
from harness.report.html import DRILLDOWN_LIMIT, render_html, safe_url
from harness.report.summary import OUTCOMES, failing_outcomes, write_summary

HOSTILE = "<script>alert(1)</script>\"'&"


def _rec(case: str, adapter: str, outcome: str, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "case": case,
        "scenario": case.split("[")[0],
        "adapter": adapter,
        "profile": "documented",
        "outcome": outcome,
        "expected": {"status": "SEC_E_MESSAGE_ALTERED"},
        "actual": {"status": "SEC_E_OK" if outcome == "FAIL" else "SEC_E_MESSAGE_ALTERED"},
        "message": "",
        "duration_s": 0.0012,
        "title": "Tampered data is rejected",
        "source": {
            "ref": "MS-NLMP 3.4.4",
            "quote": "the server MUST ...",
            "url": "https://learn.microsoft.com/x",
        },
        "steps": [
            {"step": "verify", "status": "SEC_E_OK", "expected": "SEC_E_MESSAGE_ALTERED",
             "ok": outcome == "PASS", "detail": "tampered byte 3"}
        ],
        "reproducer": f"sspi-harness run --adapter {adapter} --case '{case}'",
    }
    rec.update(extra)
    return rec


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return [
        _rec("sign-tamper-data[ntlmv2]", "reference", "PASS"),
        _rec("sign-tamper-data[ntlmv2]", "wine", "FAIL",
             message="VerifySignature accepted tampered data"),
        _rec("seal-roundtrip[ntlmv2]", "reference", "NON_STRICT"),
        _rec("seal-roundtrip[ntlmv2]", "wine", "UNSUPPORTED", message="EncryptMessage missing"),
        _rec("seal-short-trailer[ntlmv2]", "wine", "CRASH", message="SIGSEGV"),
        _rec("seal-short-trailer[ntlmv2]", "reference", "TIMEOUT", message="no answer in 5s"),
        # Hostile: markup, quotes, and characters XML 1.0 cannot carry, plus a javascript: URL.
        _rec(f"hostile{HOSTILE}", "wine", "ERROR",
             message=f"boom {HOSTILE}\x00\x1b",
             actual={"status": 0x8009030F, "note": HOSTILE},
             source={"ref": "x", "quote": HOSTILE, "url": "javascript:alert(1)"}),
        # Tolerance: almost everything missing.
        {"case": "bare", "adapter": "reference", "outcome": "PASS"},
    ]


@pytest.fixture
def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    return summarize(records, started="2024-01-01T00:00:00Z", finished="2024-01-01T00:00:01Z",
                     duration_s=1.0, profile="documented")


def test_constants() -> None:
    assert OUTCOMES == ("PASS", "NON_STRICT", "FAIL", "UNSUPPORTED", "CRASH", "TIMEOUT", "ERROR")
    assert failing_outcomes == {"FAIL", "CRASH", "TIMEOUT", "ERROR"}


def test_summarize_counts(summary: dict[str, Any], tmp_path: Path) -> None:
    assert summary["cases"] == 8
    assert summary["adapters"]["reference"] == {"PASS": 2, "NON_STRICT": 1, "TIMEOUT": 1}
    assert summary["adapters"]["wine"] == {"FAIL": 1, "UNSUPPORTED": 1, "CRASH": 1, "ERROR": 1}
    assert summary["totals"] == {"PASS": 2, "NON_STRICT": 1, "FAIL": 1, "UNSUPPORTED": 1,
                                 "CRASH": 1, "TIMEOUT": 1, "ERROR": 1}
    # Stable order follows OUTCOMES, whatever order records arrive in.
    assert list(summary["totals"]) == list(OUTCOMES)
    assert summary["profile"] == "documented" and summary["duration_s"] == 1.0
    assert summary["harness_version"]
    out = write_summary(summary, tmp_path / "summary.json")
    assert json.loads(out.read_text(encoding="utf-8")) == summary


def test_summarize_omits_absent_outcomes() -> None:
    s = summarize([{"adapter": "a", "outcome": "PASS"}], started="", finished="",
                  duration_s=0.0, profile="p")
    assert s["totals"] == {"PASS": 1} and s["adapters"] == {"a": {"PASS": 1}}


def test_junit(records: list[dict[str, Any]], tmp_path: Path) -> None:
    path = write_junit(records, tmp_path / "junit.xml")
    assert not (tmp_path / "junit.tmp").exists()
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"reference", "wine"}
    ref, wine = suites["reference"], suites["wine"]
    assert (ref.get("tests"), ref.get("failures"), ref.get("errors"), ref.get("skipped")) == (
        "4", "0", "1", "0")
    assert (wine.get("tests"), wine.get("failures"), wine.get("errors"), wine.get("skipped")) == (
        "4", "1", "2", "1")
    assert root.get("tests") == "8"
    for suite in suites.values():
        float(suite.get("time") or "x")
        for case in suite.findall("testcase"):
            assert case.get("classname") == suite.get("name")
            float(case.get("time") or "x")

    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    fail = cases[("wine", "sign-tamper-data[ntlmv2]")].find("failure")
    assert fail is not None
    assert fail.get("message") == "expected SEC_E_MESSAGE_ALTERED, got SEC_E_OK"
    assert "sspi-harness run" in (fail.text or "") and "verify" in (fail.text or "")
    skipped = cases[("wine", "seal-roundtrip[ntlmv2]")].find("skipped")
    assert skipped is not None and skipped.get("message") == "EncryptMessage missing"
    crash = cases[("wine", "seal-short-trailer[ntlmv2]")].find("error")
    assert crash is not None and crash.get("type") == "CRASH"
    timeout = cases[("reference", "seal-short-trailer[ntlmv2]")].find("error")
    assert timeout is not None and timeout.get("type") == "TIMEOUT"
    non_strict = cases[("reference", "seal-roundtrip[ntlmv2]")]
    assert non_strict.find("failure") is None and non_strict.find("error") is None
    assert "NON_STRICT" in (non_strict.findtext("system-out") or "")
    passed = cases[("reference", "sign-tamper-data[ntlmv2]")]
    assert len(list(passed)) == 0

    # Hostile text survives as data (escaped on disk, intact after parsing, illegal chars gone).
    hostile = cases[("wine", f"hostile{HOSTILE}")]
    err = hostile.find("error")
    assert err is not None and err.get("type") == "ERROR"
    assert err.get("message") == f"boom {HOSTILE}"
    raw = path.read_text(encoding="utf-8")
    assert "<script>" not in raw and "&lt;script&gt;" in raw


def test_html(records: list[dict[str, Any]], summary: dict[str, Any], tmp_path: Path) -> None:
    path = write_html(records, summary, tmp_path / "report.html")
    assert not (tmp_path / "report.tmp").exists()
    html = path.read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:alert" not in re.sub(r"<code>[^<]*</code>", "", html)
    for rec in records:
        case = rec["case"]
        escaped = (case.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                   .replace('"', "&#34;").replace("'", "&#39;"))
        assert escaped in html

    parsed = _parse(html)
    # Self-contained: no external resources referenced by <link>/<script>/<img>.
    for tag, attrs in parsed.tags:
        if tag in ("link", "script", "img", "iframe"):
            for name in ("src", "href"):
                value = (attrs.get(name) or "").lower()
                assert not value.startswith(("http://", "https://", "//")), (tag, attrs)
    assert parsed.script_count == 1

    # The FAIL cell is coloured as a failure and links to its drill-down.
    fail_ids = [a["id"] for t, a in parsed.tags
                if t == "details" and "outcome-fail" in (a.get("class") or "").split()]
    assert len(fail_ids) == 1
    fail_cells = [a for t, a in parsed.tags
                  if t == "td" and "outcome-fail" in (a.get("class") or "").split()]
    assert len(fail_cells) == 1
    assert f'href="#{fail_ids[0]}"' in html
    # Only http(s) source URLs become links.
    assert 'href="https://learn.microsoft.com/x"' in html
    # Integer statuses are shown symbolically.
    assert "SEC_E_MESSAGE_ALTERED" in html
    assert "alert(1)" in html  # hostile text kept, as text


def test_safe_url() -> None:
    assert safe_url("https://example.org/a") == "https://example.org/a"
    assert safe_url("http://example.org") == "http://example.org"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil", "ftp://x", None, 3, ""):
        assert safe_url(bad) is None


def test_html_large_run_skips_pass_drilldowns() -> None:
    recs = [{"case": f"c{i}", "adapter": "a", "outcome": "PASS"} for i in range(DRILLDOWN_LIMIT)]
    recs.append({"case": "broken", "adapter": "a", "outcome": "FAIL"})
    html = render_html(recs, {})
    assert html.count("<details") == 1
    assert "omitted" in html


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.script_count += 1


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    return parser
