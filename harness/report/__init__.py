"""Reporting layer: turn conformance result records into HTML, JUnit XML and JSON summaries.

Kept separate from the runner so reports can be regenerated from a stored results.jsonl.
"""

from __future__ import annotations

from harness.report.html import write_html
from harness.report.junit import write_junit
from harness.report.summary import summarize

__all__ = ["summarize", "write_html", "write_junit"]
