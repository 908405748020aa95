"""The run loop: cases × adapters, sanity first and last, results appended as they finish."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.adapters.base import Adapter
from harness.runner.executor import execute
from harness.runner.store import ResultStore
from harness.scenarios.model import Case

SANITY_ID = "sanity"


@dataclass(frozen=True)
class PlannedCase:
    """A case as it appears in the results: sanity runs twice under two ids."""

    id: str
    case: Case


def plan(cases: list[Case]) -> list[PlannedCase]:
    """Sanity first and last, the rest in catalogue order."""
    sanity = [c for c in cases if c.scenario.id == SANITY_ID]
    rest = [PlannedCase(c.id, c) for c in cases if c.scenario.id != SANITY_ID]
    if not sanity:
        return rest
    return [PlannedCase("sanity[start]", sanity[0]), *rest, PlannedCase("sanity[end]", sanity[0])]


def _record(
    adapter_name: str,
    planned: PlannedCase,
    profile: str,
    outcome: str,
    message: str,
    duration: float,
    **extra: Any,
) -> dict[str, Any]:
    scenario = planned.case.scenario
    return {
        "case": planned.id,
        "scenario": scenario.id,
        "variant": planned.case.variant,
        "adapter": adapter_name,
        "profile": profile,
        "outcome": outcome,
        "message": message,
        "duration_s": round(duration, 6),
        "title": scenario.title,
        "source": {
            "ref": scenario.source_ref,
            "quote": scenario.source_quote,
            "url": scenario.source_url,
        },
        "reproducer": "sspi-harness run "
        + " ".join(
            shlex.quote(a)
            for a in ("--adapter", adapter_name, "--profile", profile, "--case", planned.id)
        ),
        **extra,
    }


def run_adapter(
    name: str,
    adapter_cls: type[Adapter],
    planned: Iterable[PlannedCase],
    store: ResultStore,
    *,
    profile: str,
    on_case: Callable[[dict[str, Any]], None] = lambda record: None,
) -> None:
    """Run every planned case not yet in ``store`` against one adapter."""
    todo = [p for p in planned if (name, p.id) not in store.done]
    availability = adapter_cls.available()
    adapter = adapter_cls() if availability.ok else None
    try:
        for item in todo:
            missing = item.case.needs & ~adapter_cls.capabilities
            if adapter is None or missing:
                reason = (
                    availability.reason
                    if adapter is None
                    else ("missing capability " + ", ".join(m.name or "" for m in missing))
                )
                record = _record(
                    name,
                    item,
                    profile,
                    "UNSUPPORTED",
                    reason,
                    0.0,
                    expected={},
                    actual={},
                    steps=[],
                )
            else:
                start = time.perf_counter()
                result = execute(adapter, item.case, profile)
                record = _record(
                    name,
                    item,
                    profile,
                    result.outcome,
                    result.message,
                    time.perf_counter() - start,
                    expected=result.expected,
                    actual=result.actual,
                    steps=[s.to_json() for s in result.steps],
                )
            store.append(record)
            on_case(record)
    finally:
        if adapter is not None:
            adapter.close()


def sanity_notes(records: list[dict[str, Any]]) -> list[str]:
    """What the sanity cases say about each adapter's health over the run."""
    by_adapter: dict[str, dict[str, str]] = {}
    for record in records:
        if record.get("scenario") == SANITY_ID:
            by_adapter.setdefault(str(record.get("adapter")), {})[str(record.get("case"))] = str(
                record.get("outcome")
            )
    notes = []
    healthy = {"PASS", "NON_STRICT"}
    for adapter, outcomes in by_adapter.items():
        start, end = outcomes.get("sanity[start]"), outcomes.get("sanity[end]")
        if start is not None and start not in healthy and start != "UNSUPPORTED":
            notes.append(
                f"{adapter}: the opening sanity check ended {start}; every result is suspect"
            )
        elif end is not None and end not in healthy and end != "UNSUPPORTED":
            notes.append(
                f"{adapter}: the closing sanity check ended {end} after the opening one passed: "
                "the adapter broke during the run"
            )
    return notes
