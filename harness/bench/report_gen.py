"""Report generation for 100,000 results, and how fast Chromium shows the file.

The records are real: the catalogue run against the reference (all PASS) and against a
mutant (failures with messages, expected/actual, handshake tokens for pcaps), copied under
numbered adapter names until there are 100,000, as a big multi-adapter CI run would have.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
MUTANT = "harness.adapters.mutants:AcceptsReplays"


@dataclass
class ReportResult:
    records: int
    write_s: float  # summary.json, junit.xml, index.html and pcaps
    size_mb: float
    open_s: float | None  # Chromium: navigation until the report says it is ready


def sample_records(count: int) -> list[dict[str, Any]]:
    from harness.adapters.reference import ReferenceAdapter
    from harness.adapters.registry import load_adapter
    from harness.runner.engine import plan, run_adapter
    from harness.runner.store import ResultStore
    from harness.scenarios.loader import load_catalogue

    planned = plan(load_catalogue())
    real: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, cls in (("reference", ReferenceAdapter), ("mutant", load_adapter(MUTANT))):
            store = ResultStore(Path(tmp) / name, resume=False)
            run_adapter(name, cls, planned, store, profile="documented")
            store.close()
            real += store.records
    records: list[dict[str, Any]] = []
    while len(records) < count:
        copy_no = len(records) // len(real)
        for record in real[: count - len(records)]:
            again = copy.deepcopy(record)
            again["adapter"] = f"{record['adapter']}-{copy_no}"
            records.append(again)
    return records


def measure_report(count: int = 100_000, *, browser: bool = True) -> ReportResult:
    from harness.report import summarize, write_html, write_junit
    from harness.report.summary import write_summary

    records = sample_records(count)
    out = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        start = time.perf_counter()
        summary = summarize(
            records, started="", finished="", duration_s=0.0, profile="documented"
        )
        write_summary(summary, out / "summary.json")
        write_junit(records, out / "junit.xml")
        report = write_html(records, summary, out / "index.html")
        write_s = time.perf_counter() - start
        open_s = open_in_chromium(report) if browser else None
        return ReportResult(len(records), write_s, report.stat().st_size / 1e6, open_s)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def open_in_chromium(report: Path) -> float | None:
    """Seconds from navigation to the report's ``data-ready`` mark in headless Chromium, or
    None when Chromium or Playwright is not installed."""
    if not CHROMIUM.exists():
        return None
    try:
        from playwright import sync_api
    except ImportError:
        return None
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            start = time.perf_counter()
            page.goto(report.as_uri())
            page.wait_for_selector("body[data-ready]", timeout=60_000)
            return time.perf_counter() - start
        finally:
            browser.close()
