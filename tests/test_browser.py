"""The HTML report in a real browser: headless Chromium (Debian package ``chromium``) driven by
Playwright's Python API with ``executable_path`` (Playwright's own browser download is never
used). The reports come from real runs; the tests do what a person does: read the summary,
filter, page, open a failing case, and they check that the page fetches nothing.

A screenshot of the matrix with an open drill-down is kept in ``reports/screenshots/``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "reports" / "screenshots"
REPLAYS = "harness.adapters.mutants:AcceptsReplays"
REVERSE = "harness.adapters.mutants:SignsReverseOrder"
PAGE = 200

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (Debian package chromium)"
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs playwright (pip install playwright; no browser download)"
)


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def replays_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole catalogue against the reference and a mutant that accepts replays."""
    out = tmp_path_factory.mktemp("replays")
    assert main(["run", "--adapter", "reference", "--adapter", REPLAYS, "--out", str(out),
                 "--quiet"]) == 1
    return out


@pytest.fixture(scope="module")
def bytes_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose failures are wrong bytes (a mutant that signs DATA buffers in reverse), gated
    by a baseline, plus a worker crash during the handshake and a hostile record."""
    from harness.report import summarize, write_html
    from harness.report.baseline import Baseline, Entry, gate

    out = tmp_path_factory.mktemp("bytes")
    assert main(["run", "--adapter", "reference", "--adapter", REVERSE, "--out", str(out),
                 "--quiet", "--case", "sign-two-data-buffers[*", "--case",
                 "desc-seal-count-smaller*"]) == 1
    records = _records(out)
    records.append(_crash_record())
    records.append({"case": "<img src=x onerror=window.__pwned=1>", "adapter": REVERSE,
                    "outcome": "FAIL", "message": "</script><script>window.__pwned=2</script>",
                    "expected": {"status": "<b>x</b>"}, "actual": {"status": 0x8009030F}})
    baseline = Baseline({REVERSE: [
        Entry("sign-two-data-buffers[*]@as-client", "FAIL", "signs DATA buffers in reverse"),
    ]})
    gate(records, baseline)
    summary = summarize(records, started="", finished="", duration_s=1.0, profile="documented")
    write_html(records, summary, out / "index.html")
    (out / "gated.json").write_text(json.dumps(records))
    return out


def _crash_record() -> dict[str, Any]:
    from harness.adapters.base import ContextOptions
    from harness.adapters.reference import ReferenceAdapter

    adapter, options = ReferenceAdapter(), ContextOptions()
    _, negotiate = adapter.client(options).step(None)
    _, challenge = adapter.server(options).step(negotiate)
    call = f"party.step(2, {challenge.hex()})"
    return {"case": "sanity[start]@as-client", "scenario": "sanity", "variant": "ntlmv2",
            "adapter": "native", "kind": "vs-reference", "peer": "reference", "role": "client",
            "outcome": "CRASH", "message": f"worker killed by SIGSEGV during {call[:40]}...",
            "expected": {}, "actual": {"fatal_call": call},
            "reproducer": "sspi-harness run --adapter native --case 'sanity[start]@as-client'"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Session:
    """A page on a report, recording every request that is not a file:// one and every
    script error; tests assert both stay empty."""

    def __init__(self, browser: Any, report: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1600, "height": 1000})
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context.route("**", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else 0)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(report.as_uri())
        self.page.wait_for_selector("body[data-ready]")

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def rows(self) -> list[str]:
        result: list[str] = self.page.locator("#matrix-body th.case").all_inner_texts()
        return result

    def filter_text(self, text: str) -> None:
        self.page.fill("#filter-text", text)
        self.page.wait_for_function(  # the filters ran on this text (they wait for typing)
            "t => document.getElementById('filter-count').dataset.needle === t",
            arg=text.strip().lower(),
        )

    def only(self, *outcomes: str) -> None:
        for box in self.page.locator("input.filter-outcome").all():
            box.set_checked(box.get_attribute("value") in outcomes)

    def open_cell(self, case: str, adapter_column: int) -> Any:
        self.filter_text(case)
        row = self.page.locator("#matrix-body tr", has=self.page.locator(
            "th.case", has_text=re.compile(f"^{re.escape(case)}$")))
        row.locator("td").nth(adapter_column).locator("a").click()
        self.page.wait_for_selector("#drilldown[data-index]")
        return self.page.locator("#drilldown")

    def close(self) -> None:
        assert self.outside == [], f"the report fetched {self.outside}"
        assert self.errors == [], self.errors
        assert self.dialogs == []
        self.context.close()


def test_summary_filters_paging_and_a_failing_case(browser: Any, replays_run: Path) -> None:
    records = _records(replays_run)
    summary = json.loads((replays_run / "summary.json").read_text())
    s = Session(browser, replays_run / "index.html")
    page = s.page

    # The summary: the number of results and the totals per outcome.
    assert page.inner_text("#case-total") == str(len(records))
    totals = page.locator("#totals .badge").all_inner_texts()
    assert totals == [f"{name} {count}" for name, count in summary["totals"].items()]

    # The matrix: one row per case id, 200 to a page.
    cases = sorted({r["case"] for r in records})
    pages = math.ceil(len(cases) / PAGE)
    assert page.inner_text("#filter-count") == f"{len(cases)} of {len(cases)} rows shown"
    assert page.inner_text("#page-label") == f"page 1 of {pages}"
    first_page = s.rows()
    assert len(first_page) == PAGE
    page.click("#page-next")
    assert page.inner_text("#page-label") == f"page 2 of {pages}"
    second_page = s.rows()
    assert len(second_page) == PAGE and not set(first_page) & set(second_page)
    page.click("#page-last")
    assert len(s.rows()) == len(cases) - PAGE * (pages - 1)
    assert page.is_disabled("#page-next") and not page.is_disabled("#page-prev")

    # Filter by outcome: only rows with a failure, and every one shows it.
    s.only("FAIL")
    failing = {r["case"] for r in records if r["outcome"] == "FAIL"}
    assert page.inner_text("#filter-count") == f"{len(failing)} of {len(cases)} rows shown"
    assert page.inner_text("#page-label") == f"page 1 of {math.ceil(len(failing) / PAGE)}"
    shown = s.rows()
    assert set(shown) <= failing
    assert page.locator("#matrix-body tr").count() == page.locator(
        "#matrix-body tr:has(td.outcome-fail)").count()

    # Filter by text on top: the replay cases.
    s.filter_text("verify-replay[")
    expected = sorted(c for c in failing if "verify-replay[" in c)
    assert sorted(s.rows()) == expected
    s.only(*[b.get_attribute("value") for b in page.locator("input.filter-outcome").all()])

    # Drill into the mutant's failure: what was expected, what happened, how to rerun it.
    record = next(r for r in records
                  if r["case"] == "verify-replay[ntlmv2]" and r["adapter"] == REPLAYS)
    column = sorted({r["adapter"] for r in records}).index(REPLAYS)
    drill = s.open_cell("verify-replay[ntlmv2]", column)
    assert re.fullmatch(r"#case-\d+", page.evaluate("location.hash"))
    assert drill.locator(".badge").first.inner_text() == "FAIL"
    assert drill.locator("code.case-id").inner_text() == "verify-replay[ntlmv2]"
    assert drill.locator("p.message").inner_text() == record["message"]
    assert "expected SEC_E_OUT_OF_SEQUENCE, got SEC_E_OK" in record["message"]
    expected_status = drill.locator("table.kv.expected tr.diff td").inner_text()
    actual_status = drill.locator("table.kv.actual tr.diff td").inner_text()
    assert expected_status == "SEC_E_OUT_OF_SEQUENCE (0x80090310)"
    assert actual_status == "SEC_E_OK (0x00000000)"
    assert drill.locator("table.steps td.bad").count() == 1
    assert drill.locator("pre.reproducer").inner_text() == record["reproducer"]
    assert REPLAYS in record["reproducer"]
    assert record["source"]["ref"] in drill.inner_text()
    # The same case for the other adapter is one click away.
    assert drill.locator("ul.related a").all_inner_texts() == ["reference"]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    s.filter_text("verify-re")  # a fuller matrix beside the open case
    page.evaluate("window.scrollTo(0, document.getElementById('matrix-section').offsetTop)")
    page.screenshot(path=str(SCREENSHOTS / "report.png"))
    assert (SCREENSHOTS / "report.png").stat().st_size > 10_000

    # Printing: no controls, the open case starts a page.
    page.emulate_media(media="print")
    assert page.is_hidden("#filter-text") and page.is_hidden("#page-next")
    assert page.is_visible("#drilldown") and page.is_visible("#print-note")
    assert page.inner_text("#print-note").startswith("Matrix page 1 of ")
    pdf = page.pdf()
    assert pdf.startswith(b"%PDF")
    s.close()


def test_hex_diff_dissection_gate_and_pcap(browser: Any, bytes_run: Path) -> None:
    records = json.loads((bytes_run / "gated.json").read_text())
    s = Session(browser, bytes_run / "index.html")
    page = s.page
    adapters = sorted({r["adapter"] for r in records} | {"native"})
    column = adapters.index(REVERSE)

    # A signature that differs from the reference's mirror: both sides, bytes highlighted,
    # each dissected; the checksum row is marked as the difference.
    case = "sign-two-data-buffers[ntlmv2]@as-client"
    record = next(r for r in records if r["case"] == case)
    ours, ref = re.search(r"differs from the reference's: (\w+) vs (\w+)",
                          record["message"]).groups()  # type: ignore[union-attr]
    drill = s.open_cell(case, column)
    diff = drill.locator(".hexdiff")
    assert "the reference's mirror vs " + REVERSE in diff.locator("h4").first.inner_text()
    differing = sum(a != b for a, b in zip(bytes.fromhex(ours), bytes.fromhex(ref), strict=True))
    assert diff.locator("span.d").count() == 2 * differing
    assert diff.locator("tr.left span.d").all_inner_texts() == [
        f"{b:02x}" for a, b in zip(bytes.fromhex(ours), bytes.fromhex(ref), strict=True) if a != b]
    titles = diff.locator(".dissection h4").all_inner_texts()
    assert titles == ["NTLMSSP_MESSAGE_SIGNATURE (with ESS)"] * 2
    assert diff.locator(".dissection tr.diff td.name").all_inner_texts() == ["Checksum"] * 2
    assert diff.locator(".dissection").nth(1).locator("tr", has_text="Checksum").locator(
        "td").nth(1).inner_text() == ours[8:24]
    # Gated: the baseline expects this failure.
    assert drill.locator(".gate").first.inner_text() == "XFAIL"
    assert "signs DATA buffers in reverse" in drill.locator("p.gateline").inner_text()

    # Without extended session security the signature reads RandomPad / CRC32 / SeqNum.
    drill = s.open_cell("sign-two-data-buffers[ntlmv1]@as-client", column)
    assert drill.locator(".dissection h4").first.inner_text() == (
        "NTLMSSP_MESSAGE_SIGNATURE (without ESS)")
    assert "Checksum (CRC32)" in drill.locator(".dissection").first.inner_text()

    # A buffer the case expected verbatim (expect_buffers): expected vs actual hex.
    drill = s.open_cell("desc-seal-count-smaller[ntlmv2]", column)
    wanted = next(r for r in records if r["case"] == "desc-seal-count-smaller[ntlmv2]"
                  and r["adapter"] == REVERSE)["expected"]["buffer"]
    assert drill.locator(".hexdiff tr.left td.side").first.inner_text() == "expected"
    assert "".join(drill.locator(".hexdiff tr.left td.bytes").all_inner_texts()).replace(
        " ", "") == wanted

    # The gate: a regression is counted, listed and filterable.
    assert "REGRESSION" in page.inner_text("#baseline")
    regressions = sorted({r["case"] for r in records if r.get("gate") == "REGRESSION"})
    assert regressions
    s.filter_text("")
    page.select_option("#filter-gate", "REGRESSION")
    assert sorted(s.rows()) == regressions
    page.select_option("#filter-gate", "")

    # A worker crash during the handshake: the call, the token dissected, a pcap to open.
    drill = s.open_cell("sanity[start]@as-client", adapters.index("native"))
    assert drill.locator(".badge").first.inner_text() == "CRASH"
    assert drill.locator("pre.fatal").inner_text().startswith("party.step(2, 4e544c4d")
    assert "NTLMSSP CHALLENGE_MESSAGE" in drill.locator(".dissection h4").first.inner_text()
    assert "ServerChallenge" in drill.locator(".dissection").first.inner_text()
    href = drill.locator("a.pcap").get_attribute("href")
    assert href == "pcaps/native/sanity_start_as-client.pcap"
    assert (bytes_run / href).stat().st_size > 0

    # Hostile text stays text.
    drill = s.open_cell("<img src=x onerror=window.__pwned=1>", column)
    assert drill.locator("p.message").inner_text() == (
        "</script><script>window.__pwned=2</script>")
    assert drill.locator("table.kv.expected td").first.inner_text() == "<b>x</b>"
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0
    s.close()


def test_a_hundred_thousand_results_stay_usable(browser: Any, tmp_path: Path) -> None:
    """100,000 results load, filter and page in the browser (times are printed, not asserted:
    run with -s to see them)."""
    import time

    from harness.report import summarize, write_html

    adapters = ("reference", "pyspnego", "scapy", "gssapi")
    outcomes = ("PASS", "PASS", "PASS", "FAIL", "UNSUPPORTED")
    records = [
        {"case": f"scenario-{i // 4 % 250}[ntlmv2,n={i // 4}]",
         "scenario": f"scenario-{i // 4 % 250}",
         "adapter": adapters[i % 4], "outcome": outcomes[(i // 4) % 5], "kind": "conformance",
         "message": "step 1:verify/server: expected SEC_E_MESSAGE_ALTERED, got SEC_E_OK"
         if outcomes[(i // 4) % 5] == "FAIL" else "",
         "expected": {"status": "SEC_E_MESSAGE_ALTERED"}, "actual": {"status": "SEC_E_OK"},
         "reproducer": f"sspi-harness run --adapter {adapters[i % 4]} --case 'x{i}'"}
        for i in range(100_000)
    ]
    summary = summarize(records, started="", finished="", duration_s=0.0, profile="documented")
    report = write_html(records, summary, tmp_path / "index.html")
    started = time.perf_counter()
    s = Session(browser, report)
    loaded = time.perf_counter() - started
    page = s.page
    assert page.inner_text("#filter-count") == "25000 of 25000 rows shown"
    assert page.inner_text("#page-label") == "page 1 of 125"
    started = time.perf_counter()
    s.filter_text("n=2499")
    filtered = time.perf_counter() - started
    cases = {r["case"] for r in records}
    assert sorted(s.rows()) == sorted(c for c in cases if "n=2499" in c)
    assert len(s.rows()) == 11  # n=2499 and n=24990 to n=24999
    s.filter_text("")
    s.only("FAIL")
    assert page.inner_text("#filter-count") == "5000 of 25000 rows shown"
    page.click("#page-last")
    assert page.inner_text("#page-label") == "page 25 of 25" and len(s.rows()) == PAGE
    print(f"100,000 results: {report.stat().st_size / 1e6:.1f} MB, loaded in {loaded:.2f} s, "
          f"text filter in {filtered:.2f} s")
    s.close()


@pytest.fixture(scope="module")
def campaign_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real fuzz campaign that catches the replay mutant, its page, and a main report that
    lists it (DIR/fuzz/<name>/)."""
    from harness.fuzzing import run_campaign
    from harness.report import summarize, write_html
    from harness.report.campaign import load_campaign, write_campaign_page

    out = tmp_path_factory.mktemp("fuzzed")
    folder = out / "fuzz" / "replays"
    result = run_campaign(REPLAYS, "verify", runs=200, out_dir=folder, seed=1, minimize=False)
    assert result.findings
    write_campaign_page(folder)
    records = [{"case": "verify-replay[ntlmv2]", "adapter": "reference", "outcome": "PASS"}]
    summary = summarize(records, started="", finished="", duration_s=0.0, profile="documented")
    write_html(records, summary, out / "index.html", campaigns=[load_campaign(folder)])
    return out


def test_the_campaign_page_and_its_summary_in_the_report(browser: Any, campaign_run: Path) -> None:
    folder = campaign_run / "fuzz" / "replays"
    data = json.loads((folder / "campaign.json").read_text())
    finding = data["findings"][0]

    # The main report: the campaign's summary and plots, and a link to its page.
    s = Session(browser, campaign_run / "index.html")
    page = s.page
    section = page.locator("#fuzz-campaigns")
    assert section.locator("h2").inner_text() == "Fuzz campaigns"
    assert f"{data['execs']:,} execs" in section.locator(".summary-line").inner_text()
    assert section.locator("svg.plot").count() == 3
    section.locator("a.campaign-link").click()
    page.wait_for_selector("body[data-ready]")
    assert page.url == (folder / "campaign.html").as_uri()

    # The campaign page: three plots that are drawn, each with two lines and a legend.
    plots = page.locator("svg.plot")
    assert plots.count() == 3
    for k in range(3):
        box = plots.nth(k).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150
        assert plots.nth(k).locator("polyline.series").count() == 2
    legend = plots.first.locator(".legend text").all_text_contents()
    assert legend == [f"execs {data['execs']:,}", f"adapter calls {data['calls']:,}"]

    # The finding, its input and both reproducers, each with a copy button.
    row = page.locator("tbody.finding").first
    assert row.locator("td.kind").inner_text() == finding["kind"]
    assert row.locator("code.signature").inner_text() == finding["signature"]
    assert row.locator("p.message").inner_text() == finding["message"]
    assert row.locator("td.confirmed").inner_text() == "yes"
    commands = [finding["reproducer"]["atheris"], finding["reproducer"]["harness"]]
    assert row.locator("code.reproducer").all_inner_texts() == commands
    assert row.locator("pre.hex").inner_text().startswith("0000  ")
    copy = row.locator("button.copy").nth(1)
    assert copy.is_visible()
    copy.click()
    page.wait_for_function(  # copied, or (no clipboard here) the command is selected
        "c => document.querySelectorAll('button.copy')[1].textContent === 'copied'"
        " || String(window.getSelection()) === c",
        arg=commands[1],
    )

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "campaign.png"), full_page=True)
    assert (SCREENSHOTS / "campaign.png").stat().st_size > 10_000

    # Printing: no buttons, the plots and the commands stay.
    page.emulate_media(media="print")
    assert page.is_hidden("button.copy >> nth=0") and page.is_visible("svg.plot >> nth=2")
    assert page.pdf().startswith(b"%PDF")
    s.close()


def test_evidence_deviations_families_and_the_interop_column(browser: Any, tmp_path: Path) -> None:
    """The drill-down shows each step's evidence under the steps and says when the deciding
    step has no Windows recording; a Deviations family lists all its cases on demand; an
    interop conversation sits in its own column."""
    from harness.report import summarize, write_html
    from harness.report.evidence import NO_WINDOWS_EVIDENCE
    from harness.report.html import FAMILY_SHOWN

    def step(label: str, ok: bool, **evidence: str) -> dict[str, Any]:
        return {"step": label, "status": "SEC_E_OK", "expected": "SEC_E_OK", "ok": ok,
                "detail": "", **({"evidence": evidence} if evidence else {})}

    hostile = "<img src=x onerror=window.__pwned=1>"
    records: list[dict[str, Any]] = [
        {"case": "sizes-x[ntlmv2]", "scenario": "sizes-x", "adapter": "reference",
         "kind": "conformance", "profile": "windows", "outcome": "NON_STRICT",
         "expected": {"step": "0:sizes/client", "status": "SEC_E_OK"},
         "steps": [step("0:sizes/client", False, windows=f"Wine ntlm.c testAuth {hostile}"),
                   step("1:sizes/server", True)]},
        {"case": "sizes-y[ntlmv2]", "scenario": "sizes-y", "adapter": "reference",
         "kind": "conformance", "profile": "windows", "outcome": "PASS",
         "expected": {"step": "0:verify/server", "status": "SEC_E_OK"},
         "steps": [step("0:verify/server", True, documented="the VerifySignature page")]},
        {"case": "sanity[start]@client=reference,server=native", "scenario": "sanity",
         "adapter": "reference", "kind": "interop", "peer": "native", "role": "client",
         "outcome": "FAIL", "message": "native's fault"},
    ]
    records += [{"case": f"verify-replay[ntlmv2,n={i}]", "scenario": "verify-replay",
                 "adapter": "reference", "kind": "conformance", "outcome": "FAIL",
                 "message": f"failure {i}"} for i in range(FAMILY_SHOWN + 3)]
    summary = summarize(records, started="", finished="", duration_s=0.0, profile="windows")
    s = Session(browser, write_html(records, summary, tmp_path / "index.html"))
    page = s.page
    assert page.locator("#matrix-head th").all_inner_texts() == ["case", "reference", "interop"]

    drill = s.open_cell("sizes-x[ntlmv2]", 0)
    assert drill.locator("p.why").all_inner_texts() == [
        f"0:sizes/client Why (windows profile): Wine ntlm.c testAuth {hostile}"]
    assert page.evaluate("window.__pwned") is None
    drill = s.open_cell("sizes-y[ntlmv2]", 0)
    assert drill.locator("p.why").all_inner_texts() == [
        "0:verify/server Why (documented profile): the VerifySignature page", NO_WINDOWS_EVIDENCE]
    drill = s.open_cell("sanity[start]@client=reference,server=native", 1)
    assert "adapter: reference" in drill.locator("p.meta").first.inner_text()

    family = page.locator("details.family", has=page.locator("code", has_text="verify-replay"))
    family.locator("summary").click()
    assert family.locator("li").count() == FAMILY_SHOWN
    family.locator("button.show-all").click()
    assert family.locator("li").count() == FAMILY_SHOWN + 3
    family.locator("li a", has_text="verify-replay[ntlmv2,n=12]").click()
    page.wait_for_selector("#drilldown[data-index]")
    assert page.locator("#drilldown code.case-id").inner_text() == "verify-replay[ntlmv2,n=12]"
    non_strict = page.locator("details.family", has=page.locator("code", has_text="sizes-x"))
    non_strict.locator("summary").click()
    assert "Why (windows profile): Wine ntlm.c testAuth" in non_strict.inner_text()
    s.close()
