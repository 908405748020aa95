"""Single-file HTML report: summary, adapter x scenario matrix and per-case drill-downs.

The file must work offline and be safe to open even when an implementation under test put
markup in its output, so: no external resources, jinja2 autoescape on, and no record data is
ever embedded inside ``<script>``; the inline JS only reads escaped ``data-*`` attributes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from harness.report.summary import OUTCOMES, failing_outcomes
from harness.sspi.constants import status_name

#: Above this many records only non-PASS drill-downs are rendered, to keep the file light.
DRILLDOWN_LIMIT = 5000

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def outcome_class(outcome: Any) -> str:
    """CSS class for an outcome; unknown (possibly hostile) values never reach the class list."""
    return f"outcome-{outcome.lower()}" if outcome in OUTCOMES else "outcome-unknown"


def _outcome_key(outcome: Any) -> str:
    """Token used by the JS filters; restricted to known names so it cannot contain spaces."""
    return outcome if outcome in OUTCOMES else "UNKNOWN"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _status_text(value: Any) -> str:
    """Symbolic status name; numbers from adapters are translated so reports read like C code."""
    if isinstance(value, int) and not isinstance(value, bool):
        return status_name(value)
    return _text(value)


def _pretty(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("status"), int):
        value = {**value, "status": _status_text(value["status"])}
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def safe_url(value: Any) -> str | None:
    """Return the URL only if it is absolute http(s); anything else (javascript:, data:) is text."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url
    return None


def _duration(value: Any) -> str:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return ""
    if seconds != seconds:  # NaN
        return ""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _differing_keys(expected: Any, actual: Any) -> list[str]:
    """Top-level keys whose values differ, so the reader knows where to look first."""
    if not isinstance(expected, dict) or not isinstance(actual, dict):
        return [] if expected == actual else ["(value)"]
    return sorted(_text(k) for k in expected if k not in actual or expected.get(k) != actual.get(k))


def _steps(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    rows = []
    for step in value:
        if not isinstance(step, dict):
            step = {"detail": step}
        ok = step.get("ok")
        rows.append(
            {
                "step": _text(step.get("step")),
                "status": _status_text(step.get("status")),
                "expected": _status_text(step.get("expected")),
                "ok": "yes" if ok is True else ("no" if ok is False else ""),
                "ok_class": "ok" if ok is True else ("bad" if ok is False else ""),
                "detail": _text(step.get("detail")),
            }
        )
    return rows


def _case_view(rec: dict[str, Any], index: int, render: bool) -> dict[str, Any]:
    outcome = _text(rec.get("outcome") or "ERROR")
    raw_source = rec.get("source")
    source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
    expected = rec.get("expected", {})
    actual = rec.get("actual", {})
    return {
        "anchor": f"case-{index}",
        "render": render,
        "case": _text(rec.get("case") or rec.get("scenario") or f"case #{index}"),
        "scenario": _text(rec.get("scenario")),
        "adapter": _text(rec.get("adapter") or "unknown"),
        "kind": _text(rec.get("kind") or "conformance"),
        "peer": _text(rec.get("peer")),
        "outcome": outcome,
        "css": outcome_class(outcome),
        "key": _outcome_key(outcome),
        "title": _text(rec.get("title")),
        "profile": _text(rec.get("profile")),
        "source_ref": _text(source.get("ref")),
        "source_quote": _text(source.get("quote")),
        "source_url": safe_url(source.get("url")),
        "source_url_text": _text(source.get("url")),
        "expected_json": _pretty(expected),
        "actual_json": _pretty(actual),
        "differs": _differing_keys(expected, actual),
        "steps": _steps(rec.get("steps")),
        "message": _text(rec.get("message")),
        "duration": _duration(rec.get("duration_s")),
        "reproducer": _text(rec.get("reproducer")),
        "open": outcome in failing_outcomes,
    }


def _matrix(cases: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows keyed by case id, one column per adapter; first record wins on duplicates."""
    adapters = sorted({c["adapter"] for c in cases})
    rows: dict[str, dict[str, Any]] = {}
    for c in cases:
        row = rows.setdefault(
            c["case"],
            {"case": c["case"], "scenario": c["scenario"], "title": c["title"], "cells": {}},
        )
        row["cells"].setdefault(c["adapter"], c)
    ordered = sorted(rows.values(), key=lambda r: (r["scenario"], r["case"]))
    out = []
    for row in ordered:
        cells = [row["cells"].get(a) for a in adapters]
        keys = sorted({c["key"] for c in cells if c is not None})
        out.append({**row, "cells": cells, "outcome_keys": " ".join(keys)})
    return adapters, out


def _worst(outcomes: list[str]) -> str:
    """The outcome that says most about a group: a failure beats a pass."""
    for outcome in ("CRASH", "TIMEOUT", "ERROR", "FAIL", "NON_STRICT", "PASS", "UNSUPPORTED"):
        if outcome in outcomes:
            return outcome
    return outcomes[0] if outcomes else "UNSUPPORTED"


def _interop(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Client × server cells over the interop conversations; the diagonal is each adapter's
    own conformance result on the same scenarios."""
    pairs = [c for c in cases if c["kind"] == "interop"]
    if not pairs:
        return {}
    scenarios = {c["scenario"] for c in pairs}
    names = sorted({c["adapter"] for c in cases} | {c["peer"] for c in pairs if c["peer"]})
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in pairs:
        cells.setdefault((c["adapter"], c["peer"]), []).append(c)
    for c in cases:
        if c["kind"] == "conformance" and c["scenario"] in scenarios:
            cells.setdefault((c["adapter"], c["adapter"]), []).append(c)
    rows = []
    for client in names:
        row = []
        for server in names:
            group = cells.get((client, server), [])
            outcome = _worst([g["outcome"] for g in group]) if group else ""
            first_bad = next((g for g in group if g["outcome"] == outcome), None)
            row.append(
                {
                    "server": server,
                    "outcome": outcome,
                    "css": outcome_class(outcome) if group else "empty",
                    "passed": sum(g["outcome"] == "PASS" for g in group),
                    "total": len(group),
                    "anchor": first_bad["anchor"] if first_bad and first_bad["render"] else "",
                }
            )
        rows.append({"client": client, "cells": row})
    return {"names": names, "rows": rows, "scenarios": sorted(scenarios)}


def _deviations(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per adapter, its cases that did not pass alone or against the reference."""
    out: dict[str, list[dict[str, Any]]] = {}
    for c in cases:
        if c["kind"] in ("conformance", "vs-reference") and c["outcome"] not in (
            "PASS",
            "UNSUPPORTED",
        ):
            out.setdefault(c["adapter"], []).append(c)
    return [{"adapter": a, "cases": out[a]} for a in sorted(out)]


def _badges(counts: Any) -> list[dict[str, Any]]:
    if not isinstance(counts, dict):
        return []
    keys: list[Any] = [o for o in OUTCOMES if counts.get(o)]
    keys += sorted((k for k in counts if k not in OUTCOMES and counts.get(k)), key=_text)
    out: list[dict[str, Any]] = []
    for key in keys:
        try:
            n = int(counts[key])
        except (TypeError, ValueError):
            continue
        out.append({"name": _text(key), "count": n, "css": outcome_class(key)})
    total = sum(b["count"] for b in out) or 1
    for b in out:
        b["pct"] = f"{100.0 * b['count'] / total:.3f}"
    return out


def render_html(
    records: Iterable[dict[str, Any]],
    summary: dict[str, Any],
    *,
    title: str = "SSPI conformance report",
) -> str:
    """Render the report to a string (separate from writing so it can be tested or served)."""
    recs = [r for r in records if isinstance(r, dict)]
    limited = len(recs) > DRILLDOWN_LIMIT
    cases = [
        _case_view(r, i, render=not limited or _text(r.get("outcome")) != "PASS")
        for i, r in enumerate(recs)
    ]
    adapters, rows = _matrix(cases)
    summary = summary if isinstance(summary, dict) else {}
    raw_adapters = summary.get("adapters")
    adapter_counts: dict[str, Any] = raw_adapters if isinstance(raw_adapters, dict) else {}
    present = {c["key"] for c in cases}
    context = {
        "title": _text(title),
        "summary": {
            "cases": _text(summary.get("cases", len(recs))),
            "duration": _duration(summary.get("duration_s")),
            "started": _text(summary.get("started")),
            "finished": _text(summary.get("finished")),
            "profile": _text(summary.get("profile")),
            "harness_version": _text(summary.get("harness_version")),
        },
        "totals": _badges(summary.get("totals")),
        "notes": [_text(n) for n in summary.get("notes") or [] if n],
        "adapter_rows": [
            {"name": _text(name), "badges": _badges(counts)}
            for name, counts in adapter_counts.items()
        ],
        "filter_outcomes": [{"name": o, "css": outcome_class(o)} for o in OUTCOMES if o in present],
        "adapters": adapters,
        "rows": rows,
        "interop": _interop(cases),
        "deviations": _deviations(cases),
        "cases": [c for c in cases if c["render"]],
        "omitted": sum(1 for c in cases if not c["render"]),
        "limit": DRILLDOWN_LIMIT,
    }
    return _env().get_template("report.html.j2").render(**context)


def write_html(
    records: Iterable[dict[str, Any]],
    summary: dict[str, Any],
    path: str | os.PathLike[str],
    *,
    title: str = "SSPI conformance report",
) -> Path:
    """Write the report atomically, so a viewer never sees a truncated file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(records, summary, title=title)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8", errors="replace")
    os.replace(tmp, target)
    return target


__all__ = ["DRILLDOWN_LIMIT", "outcome_class", "render_html", "safe_url", "write_html"]
