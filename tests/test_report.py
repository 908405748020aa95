"""Reporting layer: counts agree across formats, and hostile adapter text cannot inject markup."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.report import summarize, write_html, write_junit
from harness.report.dissect import dissect, dissect_hex, ess_of, hex_runs
from harness.report.html import PAGE_SIZE, render_html, safe_url, script_json, status_text
from harness.report.junit import build_junit
from harness.report.pcap import safe_name, tokens_of, write_pcap, write_pcaps
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


def test_interop_records_belong_to_the_pair_in_every_format() -> None:
    """``case@client=A,server=B`` counts for the pair: summary.json's ``interop``, a JUnit suite
    of its own and the matrix's interop column, never A's counts, suite or column."""
    recs = [
        _rec("sanity[start]", "reference", "PASS"),
        _rec("sanity[start]@client=reference,server=native", "reference", "FAIL",
             kind="interop", peer="native", role="client"),
        _rec("sanity[start]@client=native,server=reference", "native", "CRASH",
             kind="interop", peer="reference", role="client"),
    ]
    summary = summarize(recs, started="", finished="", duration_s=0.0, profile="documented")
    assert summary["adapters"] == {"reference": {"PASS": 1}}
    assert summary["interop"] == {"native > reference": {"CRASH": 1},
                                  "reference > native": {"FAIL": 1}}

    root = build_junit(recs)
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"reference", "interop"}
    assert (suites["reference"].get("tests"), suites["reference"].get("failures"),
            suites["reference"].get("errors")) == ("1", "0", "0")
    interop = suites["interop"]
    assert (interop.get("tests"), interop.get("failures"), interop.get("errors")) == ("2", "1", "1")
    assert {(c.get("classname"), c.get("name")) for c in interop.iter("testcase")} == {
        ("interop", "sanity[start]@client=reference,server=native"),
        ("interop", "sanity[start]@client=native,server=reference"),
    }

    html = render_html(recs, summary)
    data = json.loads(_blob(html))
    assert data["adapters"] == ["reference", "interop"]  # no column for native at all
    columns = {r["case"]: r["adapter"] for r in _decoded(html)}
    assert columns == {"sanity[start]": "reference",
                       "sanity[start]@client=reference,server=native": "interop",
                       "sanity[start]@client=native,server=reference": "interop"}
    # The drill-down still names the client adapter (meta[9], read by the page's script).
    table = data["t"]
    clients = {table[table[row[1]][9]] for row in data["r"] if len(table[row[1]]) > 9
               and table[row[1]][9]}
    assert clients == {"reference", "native"}


def _blob(html: str) -> str:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html,
                      re.DOTALL)
    assert found is not None
    return found.group(1)


def _decoded(html: str) -> list[dict[str, Any]]:
    """The records as the page's script sees them (the JS ``rec`` function, in Python)."""
    data = json.loads(_blob(html))
    table, out, case = data["t"], [], ""

    def val(i: Any) -> Any:
        return table[i] if i else None

    for row in data["r"]:
        row = row + [0] * (7 - len(row))
        case = row[0] or case
        meta, res, extras = val(row[1]), val(row[2]), val(row[6]) or {}
        repro = val(row[4])
        out.append({
            "case": case, "adapter": data["adapters"][meta[0]], "kind": val(meta[1]),
            "title": val(meta[4]), "source": val(meta[8]), "outcome": res[0],
            "key": data["keys"][res[1]], "message": res[2], "expected": res[3],
            "actual": res[4], "steps": res[5],
            "reproducer": repro[0] + case + repro[1] if isinstance(repro, list) else repro,
            "gate": val(row[5]), "extras": extras, "table": table,
        })
    return out


def test_html(records: list[dict[str, Any]], summary: dict[str, Any], tmp_path: Path) -> None:
    path = write_html(records, summary, tmp_path / "report.html")
    assert not (tmp_path / "report.tmp").exists()
    html = path.read_text(encoding="utf-8")
    # Hostile text never becomes markup: the static parts escape it, the blob cannot end early.
    assert "<script>alert" not in html
    assert html.count("</script>") == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the Deviations list, escaped
    assert "javascript:alert" not in re.sub(r"<code>[^<]*</code>", "", html.split(
        '<script type="application/json"')[0])
    assert "<" not in _blob(html)

    parsed = _parse(html)
    for tag, attrs in parsed.tags:
        if tag in ("link", "script", "img", "iframe"):
            for name in ("src", "href"):
                value = (attrs.get(name) or "").lower()
                assert not value.startswith(("http://", "https://", "//")), (tag, attrs)
    scripts = [a for t, a in parsed.tags if t == "script"]
    assert [a.get("type") for a in scripts] == ["application/json", None]

    # Only the one inline script may run, by hash; nothing may be fetched.
    csp = next(a["content"] for t, a in parsed.tags
               if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and "default-src 'none'" in csp
    script = re.search(r'<script id="report-js">(.*?)</script>', html, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp

    # Every record is in the blob, intact, hostile ones included.
    decoded = _decoded(html)
    assert sorted(r["case"] for r in decoded) == sorted(r["case"] for r in records)
    hostile = next(r for r in decoded if r["case"] == f"hostile{HOSTILE}")
    assert hostile["key"] == "ERROR" and hostile["message"] == f"boom {HOSTILE}\x00\x1b"
    assert ["status", "SEC_E_MESSAGE_ALTERED (0x8009030F)", 1] in hostile["actual"]
    assert hostile["source"][2] == "javascript:alert(1)" and hostile["source"][3] == 0  # text
    fail = next(r for r in decoded if r["key"] == "FAIL")
    assert fail["expected"] == [["status", "SEC_E_MESSAGE_ALTERED (0x8009030F)", 1]]
    assert fail["actual"] == [["status", "SEC_E_OK (0x00000000)", 1]]
    assert fail["steps"][0][:4] == ["verify", "SEC_E_OK (0x00000000)",
                                    "SEC_E_MESSAGE_ALTERED (0x8009030F)", 0]
    assert fail["reproducer"] == "sspi-harness run --adapter wine --case 'sign-tamper-data[ntlmv2]'"
    assert fail["source"] == ["MS-NLMP 3.4.4", "the server MUST ...",
                              "https://learn.microsoft.com/x", 1]
    # Rows of the matrix are consecutive records of one case, adapters in column order.
    cases = [r["case"] for r in decoded]
    assert all(cases.index(c) + cases.count(c) - 1 == len(cases) - 1 - cases[::-1].index(c)
               for c in cases)
    # The static sections link into the drill-downs.
    anchor = cases.index("sign-tamper-data[ntlmv2]") + 1  # reference first, then wine
    assert f'href="#case-{anchor}"' in html


def test_script_json_cannot_break_out() -> None:
    nasty = {"a": "</script><script>alert(1)</script>", "b": "<!-- x", "c": "&amp; \u2028 >"}
    text = script_json(nasty)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == nasty
    html = render_html([{"case": nasty["a"], "adapter": nasty["b"], "outcome": "FAIL",
                         "message": nasty["c"]}], {})
    assert html.count("</script>") == 2 and "<script>alert" not in html
    assert _decoded(html)[0]["case"] == nasty["a"]


def test_status_text() -> None:
    assert status_text(0x8009030F) == "SEC_E_MESSAGE_ALTERED (0x8009030F)"
    assert status_text(-2146893041) == "SEC_E_MESSAGE_ALTERED (0x8009030F)"  # a signed LONG
    assert status_text("SEC_E_OK") == "SEC_E_OK (0x00000000)"
    assert status_text(0x12345678) == "0x12345678"
    assert status_text("whatever") == "whatever" and status_text(None) == ""


def test_safe_url() -> None:
    assert safe_url("https://example.org/a") == "https://example.org/a"
    assert safe_url("http://example.org") == "http://example.org"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil", "ftp://x", None, 3, ""):
        assert safe_url(bad) is None


def _handshake() -> list[bytes]:
    from harness.adapters.base import ContextOptions
    from harness.adapters.reference import ReferenceAdapter

    adapter, options = ReferenceAdapter(), ContextOptions()
    client, server = adapter.client(options), adapter.server(options)
    _, negotiate = client.step(None)
    _, challenge = server.step(negotiate)
    _, authenticate = client.step(challenge)
    return [negotiate, challenge, authenticate]


SIG_OURS = "01000000d7646f5acd49602300000000"
SIG_REF = "01000000355382dd0425708100000000"


def test_drilldown_bytes_diffs_and_dissections(tmp_path: Path) -> None:
    tokens = _handshake()
    recs = [
        _rec("seal-readonly[ntlmv2]@as-client", "pyspnego", "FAIL", kind="vs-reference",
             variant="ntlmv2",
             message=f"step 0:seal/client: buffer 2 differs from the reference's: "
                     f"{SIG_OURS} vs {SIG_REF}"),
        _rec("qop-wrap[ntlmv1]", "pyspnego", "FAIL", variant="ntlmv1",
             message="step 0:seal/client: buffer 0 holds 5018d4, expected 726561",
             expected={"step": "0:seal/client", "status": "SEC_E_OK", "buffer": "726561"},
             actual={"step": "0:seal/client", "status": "SEC_E_OK", "buffer": "5018d4"}),
        _rec("establish-crash[ntlmv2]@as-server", "native", "CRASH", kind="vs-reference",
             message="worker killed by SIGSEGV during party.step(3, ...)",
             expected={}, actual={"fatal_call": f"party.step(3, {tokens[1].hex()})"}),
        _rec("sign-short[ntlmv2]", "native", "CRASH", message="worker killed by SIGSEGV",
             expected={}, actual={"fatal_call": "make_signature(Handle(lower=1, upper=2), 0, "
                                  "desc={'ulVersion': 0, 'pBuffers': [{'type': 1, 'data': "
                                  "'73686f7274'}, {'type': 2, 'data': '" + SIG_OURS + "'}]}, 0)"}),
    ]
    path = write_html(recs, summarize(recs, started="", finished="", duration_s=0.0,
                                      profile="documented"), tmp_path / "index.html")
    html = path.read_text(encoding="utf-8")
    by_case = {r["case"]: r for r in _decoded(html)}
    table = by_case["qop-wrap[ntlmv1]"]["table"]

    mirror = by_case["seal-readonly[ntlmv2]@as-client"]["extras"]["diffs"]
    assert len(mirror) == 1
    left, right = mirror[0]["left"], mirror[0]["right"]
    assert (left["name"], left["hex"], right["name"], right["hex"]) == (
        "reference", SIG_REF, "pyspnego", SIG_OURS)
    dis = table[right["dis"]]
    assert dis["title"] == "NTLMSSP_MESSAGE_SIGNATURE (with ESS)"
    assert dis["rows"] == [[0, "Version", "1"], [0, "Checksum", "d7646f5acd496023"],
                           [0, "SeqNum", "0"]]

    wrap = by_case["qop-wrap[ntlmv1]"]["extras"]["diffs"]
    assert len(wrap) == 1 and wrap[0]["left"]["hex"] == "726561"
    assert wrap[0]["right"]["hex"] == "5018d4" and "dis" not in wrap[0]["right"]

    crash = by_case["establish-crash[ntlmv2]@as-server"]["extras"]
    assert crash["fatal"].startswith("party.step(3, 4e544c4d")
    (token,) = crash["bytes"]
    assert token["name"] == "handshake token passed to the call" and token["len"] == len(
        tokens[1])
    challenge = table[token["dis"]]
    assert challenge["title"].startswith("NTLMSSP CHALLENGE_MESSAGE")
    names = {row[1]: row[2] for row in challenge["rows"]}
    assert names["MessageType"] == "CHALLENGE_MESSAGE" and names["TargetName"] == "SERVER"
    assert crash["pcap"] == "pcaps/native/establish-crash_ntlmv2_as-server.pcap"
    assert (tmp_path / crash["pcap"]).is_file()

    sign = by_case["sign-short[ntlmv2]"]["extras"]["bytes"]
    assert [b["name"] for b in sign] == [
        "pBuffers[0] SECBUFFER_DATA", "pBuffers[1] SECBUFFER_TOKEN"]
    assert table[sign[1]["dis"]]["rows"][1] == [0, "Checksum", "d7646f5acd496023"]
    assert "pcap" not in by_case["sign-short[ntlmv2]"]["extras"]  # no handshake token
    assert not (tmp_path / "pcaps" / "native" / "sign-short_ntlmv2.pcap").exists()


def test_baseline_gates_notes_and_interop_counts(tmp_path: Path) -> None:
    from harness.report.baseline import Baseline, Entry, gate

    recs = [
        _rec("verify-replay[ntlmv2]", "mutant", "FAIL"),
        _rec("verify-reorder[ntlmv2]", "mutant", "FAIL"),
        _rec("verify-gap[ntlmv2]", "mutant", "PASS"),
        _rec("sanity[start]@client=a,server=b", "a", "PASS", kind="interop", peer="b"),
    ]
    baseline = Baseline({"mutant": [
        Entry("verify-replay[*]", "FAIL", "replays accepted <b>known</b>"),
        Entry("verify-gap[*]", "FAIL", "fixed since"),
    ]})
    verdict = gate(recs, baseline)
    assert not verdict.ok
    summary = summarize(recs, started="", finished="", duration_s=0.0, profile="documented")
    summary["notes"] = ["a <note> from the run"]
    html = render_html(recs, summary)
    assert "a &lt;note&gt; from the run" in html
    baseline_part = html.split('<section id="baseline">', 1)[1].split("</section>", 1)[0]
    for word in ("REGRESSION</span> 1", "XPASS</span> 1", "XFAIL</span> 1", "the gate fails"):
        assert word in baseline_part
    assert "verify-reorder[ntlmv2]" in baseline_part and "verify-gap[ntlmv2]" in baseline_part
    assert "fixed since" in baseline_part
    assert "replays accepted" not in baseline_part  # XFAIL is counted, not listed
    gates = {r["case"]: r["gate"] for r in _decoded(html)}
    assert gates["verify-replay[ntlmv2]"] == ["XFAIL", "FAIL", "replays accepted <b>known</b>"]
    assert gates["verify-reorder[ntlmv2]"] == ["REGRESSION", "", ""]
    assert '<select id="filter-gate"' in html
    counts = html.split('id="interop-counts"', 1)[1].split("</table>", 1)[0]
    assert "a &gt; b" in counts and "PASS 1" in counts
    assert '<select id="filter-gate"' not in render_html([_rec("x", "a", "FAIL")], {})


def test_html_100k_records_stays_compact(tmp_path: Path) -> None:
    """100,000 results: the report is written in seconds and stays a few megabytes (the time
    is printed with -s, not asserted: benchmarks measure, tests check)."""
    adapters = ("reference", "pyspnego", "scapy", "gssapi")
    outcomes = ("PASS",) * 6 + ("FAIL", "UNSUPPORTED", "NON_STRICT", "CRASH")
    recs = []
    for i in range(100_000):
        scenario = f"scenario-{i % 250}"
        case = f"{scenario}[ntlmv2,n={i // 4}]"
        outcome = outcomes[(i // 4) % len(outcomes)]
        extra: dict[str, Any] = {}
        if outcome == "FAIL" and i % 3 == 0:
            seq = f"{i:08x}"
            extra["message"] = (f"step 0:seal/client: buffer 1 differs from the reference's: "
                                f"01000000{seq}aabbccdd00000000 vs 01000000{seq}aabbccee00000000")
        recs.append(_rec(case, adapters[i % 4], outcome, scenario=scenario, variant="ntlmv2",
                         **extra))
    summary = summarize(recs, started="", finished="", duration_s=0.0, profile="documented")
    started = time.perf_counter()
    path = write_html(recs, summary, tmp_path / "index.html")
    elapsed = time.perf_counter() - started
    size = path.stat().st_size
    print(f"write_html: 100,000 records in {elapsed:.2f} s, {size / 1e6:.1f} MB")
    assert size < 12_000_000
    data = json.loads(_blob(path.read_text(encoding="utf-8")))
    assert len(data["r"]) == 100_000 and data["pageSize"] == PAGE_SIZE

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


# -- dissection -------------------------------------------------------------------------------


def test_dissect_handshake_tokens() -> None:
    negotiate, challenge, authenticate = _handshake()
    views = [dissect(t) for t in (negotiate, challenge, authenticate)]
    assert all(v is not None and not v.error for v in views)
    neg, chal, auth = ({name: value for _, name, value in v.rows} for v in views if v)
    assert views[0] is not None and views[0].title == "NTLMSSP NEGOTIATE_MESSAGE (40 bytes)"
    assert "NEGOTIATE_SIGN" in neg["NegotiateFlags"] and neg["MessageType"] == "NEGOTIATE_MESSAGE"
    assert chal["ServerChallenge"] == challenge[24:32].hex()
    assert chal["TargetName"] == "SERVER"
    assert (auth["UserName"], auth["DomainName"]) == ("User", "Domain")
    assert auth["MIC"] == authenticate[72:88].hex()
    # Nested structures are indented below their parent (AV pairs inside TargetInfo).
    depths = {name: depth for depth, name, _ in views[1].rows} if views[1] else {}
    assert depths["TargetInfo"] < depths["AvId"]


def test_dissect_signature_both_layouts() -> None:
    data = bytes.fromhex(SIG_OURS)
    ess = dissect(data, ess=True)
    assert ess is not None and ess.rows == [
        (0, "Version", "1"), (0, "Checksum", "d7646f5acd496023"), (0, "SeqNum", "0")]
    plain = dissect(data, ess=False)
    assert plain is not None and plain.title.endswith("(without ESS)")
    assert plain.rows == [(0, "Version", "1"), (0, "RandomPad", "d7646f5a"),
                          (0, "Checksum (CRC32)", "cd496023"), (0, "SeqNum", "0")]
    both = dissect(data)
    assert both is not None and len(both.rows) == 8
    assert ess_of("ntlmv2") is True and ess_of("ntlmv1-ess") is True
    assert ess_of("ntlmv1") is False and ess_of(None) is None


def test_dissect_hostile_bytes() -> None:
    _, _, authenticate = _handshake()
    cut = dissect(authenticate[:40])
    assert cut is not None and cut.title.startswith("NTLMSSP AUTHENTICATE_MESSAGE")
    assert cut.error.startswith("scapy could not dissect it") or cut.rows
    odd = dissect(b"NTLMSSP\x00\x07\x00\x00\x00" + b"<script>")
    assert odd is not None and "unknown MessageType 7" in odd.title
    huge = dissect(b"NTLMSSP\x00\x01\x00\x00\x00" + bytes(70_000))
    assert huge is not None and huge.error.startswith("not dissected")
    assert dissect(b"hello, world") is None and dissect(bytes(16)) is None
    assert dissect_hex("zz") is None
    assert hex_runs("f(3, 4e544c4d53535000AA) 'ab' 0011223344556677 abc") == [
        "4e544c4d53535000aa", "0011223344556677"]


# -- pcap -------------------------------------------------------------------------------------


def _http_tokens(path: Path) -> list[tuple[str, bytes]]:
    """(header, token) of each NTLM auth header, in the order the HTTP messages complete,
    from the TCP streams of a pcap (checking that each segment follows the last one)."""
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    pending: dict[int, bytes] = {}
    next_seq: dict[int, int] = {}
    found = []
    for pkt in rdpcap(str(path)):
        tcp = pkt[TCP]
        payload = bytes(tcp.payload)
        if tcp.sport in next_seq:
            assert tcp.seq == next_seq[tcp.sport]
        next_seq[tcp.sport] = tcp.seq + len(payload) + (1 if tcp.flags & 0x03 else 0)  # SYN/FIN
        buffer = pending.get(tcp.sport, b"") + payload
        while b"\r\n\r\n" in buffer:
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b": ")
                if value.startswith(b"NTLM "):
                    found.append((name.decode(), base64.b64decode(value[5:])))
        pending[tcp.sport] = buffer
    assert not any(pending.values())
    return found


def test_pcaps_for_failing_token_exchanges(tmp_path: Path) -> None:
    tokens = _handshake()
    handshake = [{"from": side, "token": t.hex()}
                 for side, t in zip(("client", "server", "client"), tokens, strict=True)]
    big = b"NTLMSSP\x00\x03\x00\x00\x00" + bytes(range(256)) * 12  # several TCP segments
    recs = [
        _rec("sanity[start]@client=a,server=b", "a", "FAIL", kind="interop", handshake=handshake),
        _rec("crash[ntlmv2]", "iso:Lated", "CRASH",
             actual={"fatal_call": f"party.step(7, {big.hex()})"}),
        _rec("passing[ntlmv2]", "a", "PASS", handshake=handshake),  # passes: no pcap
        _rec("no-tokens[ntlmv2]", "a", "FAIL"),  # nothing to capture
    ]
    stale = tmp_path / "pcaps" / "old" / "gone.pcap"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    links = write_pcaps(recs, tmp_path / "pcaps")
    assert links == {0: "pcaps/a/sanity_start_client_a_server_b.pcap",
                     1: "pcaps/iso_Lated/crash_ntlmv2.pcap"}
    assert not stale.exists() and not stale.parent.exists()
    assert _http_tokens(tmp_path / links[0]) == [
        ("Authorization", tokens[0]), ("WWW-Authenticate", tokens[1]),
        ("Authorization", tokens[2])]
    assert _http_tokens(tmp_path / links[1]) == [("Authorization", big)]
    assert tokens_of(recs[1]) == [("client", big)]
    assert tokens_of({"actual": {"fatal_call": f"party.step(1, {tokens[1].hex()})"}}) == [
        ("server", tokens[1])]
    assert safe_name("../../etc/passwd") == "etc_passwd" and safe_name("...") == "case"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Debian: tshark) not installed")
def test_wireshark_dissects_the_pcap_as_ntlmssp(tmp_path: Path) -> None:
    tokens = _handshake()
    path = write_pcap([("client", tokens[0]), ("server", tokens[1]), ("client", tokens[2])],
                      tmp_path / "x.pcap", case="sanity[start]")
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "ntlmssp", "-T", "fields", "-e", "ntlmssp.messagetype",
         "-e", "ntlmssp.auth.username"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split("\n")
    rows = [line.split("\t") for line in out if line.strip()]
    assert [r[0] for r in rows] == ["0x00000001", "0x00000002", "0x00000003"]
    assert rows[2][1] == "User"


def test_pcap_frames_are_what_scapy_builds() -> None:
    """write_pcap builds its frames directly (fast for thousands of failing cases); they
    must be byte for byte the Ether/IP/TCP/Raw packets scapy builds, checksums included."""
    from harness.report.pcap import frames, packets

    tokens = _handshake()
    big = b"NTLMSSP\x00\x03\x00\x00\x00" + bytes(range(256)) * 12  # several TCP segments
    exchange = [("client", tokens[0]), ("server", tokens[1]), ("client", big)]
    built = [bytes(p) for p in packets(exchange, case="x[ntlmv2]@as-client", start=0.0)]
    assert frames(exchange, case="x[ntlmv2]@as-client") == built
    assert len(built) > 10
