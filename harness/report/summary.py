"""Outcome counting shared by every report format, so all formats agree on the numbers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness import __version__

#: Stable display order of outcomes; reports iterate this instead of dict order.
OUTCOMES: tuple[str, ...] = (
    "PASS",
    "NON_STRICT",
    "FAIL",
    "UNSUPPORTED",
    "CRASH",
    "TIMEOUT",
    "ERROR",
)

#: Outcomes that mean the implementation (or the harness) misbehaved.
failing_outcomes: frozenset[str] = frozenset({"FAIL", "CRASH", "TIMEOUT", "ERROR"})


def is_interop(rec: dict[str, Any]) -> bool:
    """An interop record (``case@client=A,server=B``) belongs to the pair, not to its client
    adapter: every report format asks this one question so that they agree."""
    return rec.get("kind") == "interop"


def _ordered(counts: dict[str, int]) -> dict[str, int]:
    """Known outcomes first in OUTCOMES order, unknown ones after (sorted) so nothing is lost."""
    out = {k: counts[k] for k in OUTCOMES if counts.get(k)}
    for k in sorted(set(counts) - set(OUTCOMES)):
        if counts[k]:
            out[k] = counts[k]
    return out


def summarize(
    records: Iterable[dict[str, Any]],
    *,
    started: str,
    finished: str,
    duration_s: float,
    profile: str,
) -> dict[str, Any]:
    """Count outcomes per adapter and overall; only outcomes that occurred are listed.

    Interop records (one adapter as client, another as server) are counted per pair under
    ``interop``, not under the client adapter: a failure there belongs to the pair.
    """
    per_adapter: dict[str, dict[str, int]] = {}
    per_pair: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    cases = 0
    for rec in records:
        cases += 1
        adapter = str(rec.get("adapter") or "unknown")
        outcome = str(rec.get("outcome") or "ERROR")
        if is_interop(rec):
            bucket = per_pair.setdefault(f"{adapter} > {rec.get('peer')}", {})
        else:
            bucket = per_adapter.setdefault(adapter, {})
        bucket[outcome] = bucket.get(outcome, 0) + 1
        totals[outcome] = totals.get(outcome, 0) + 1
    return {
        "adapters": {name: _ordered(c) for name, c in sorted(per_adapter.items())},
        "interop": {pair: _ordered(c) for pair, c in sorted(per_pair.items())},
        "totals": _ordered(totals),
        "cases": cases,
        "duration_s": duration_s,
        "started": started,
        "finished": finished,
        "profile": profile,
        "harness_version": __version__,
    }


def write_summary(summary: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the summary as pretty JSON (atomically, so a crashed run never leaves half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(summary, indent=2, sort_keys=False, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, target)
    return target
