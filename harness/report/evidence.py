"""Why a step expects what it expects: the catalogue's evidence per profile, for the report.

Records written since steps carry ``evidence`` bring their own; for older records (and for a
fatal call, which leaves no step record) the catalogue is asked, so the report says the same
thing either way. The "Where the windows profile differs" section is built from the catalogue
alone, so it is in every report whatever the profile of the run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from harness.scenarios.loader import CatalogueError, expand, load_scenarios
from harness.scenarios.model import Scenario, Step

#: Shown when the step that decided a record has no recording of Windows behind it.
NO_WINDOWS_EVIDENCE = (
    "No public recording of Windows for this step: the windows profile keeps the documented "
    "expectation (docs/divergences.md)"
)
_LABEL = re.compile(r"(\d+):")


@functools.cache
def shipped_scenarios() -> tuple[Scenario, ...]:
    """The shipped catalogue, read once per process; none when it cannot be read (the run
    itself reports that; a report is still written)."""
    try:
        return tuple(load_scenarios())
    except CatalogueError:
        return ()


def _texts(raw: Any) -> dict[str, str]:
    """An evidence table as profile -> text, whatever a record holds."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, str) and v.strip()}


class Evidence:
    """Evidence per step of each catalogue case, by case id (``scenario[variant,…]``)."""

    def __init__(self, scenarios: Sequence[Scenario]) -> None:
        self._cases: dict[str, tuple[dict[str, str], ...]] = {
            case.id: tuple(_texts(s.expect.evidence if s.expect else {}) for s in case.steps)
            for scenario in scenarios
            for case in expand(scenario)
        }

    def _catalogued(self, rec: dict[str, Any], label: str) -> dict[str, str]:
        found = _LABEL.match(label)
        steps = self._cases.get(str(rec.get("case") or "").split("@", 1)[0])
        if found is None or steps is None or int(found.group(1)) >= len(steps):
            return {}
        return steps[int(found.group(1))]

    def of_steps(self, rec: dict[str, Any]) -> list[dict[str, str]]:
        """The evidence of each entry of ``rec["steps"]``: the record's own, else the
        catalogue's."""
        steps = rec.get("steps")
        out = []
        for step in steps if isinstance(steps, list) else []:
            step = step if isinstance(step, dict) else {}
            if "evidence" in step:
                out.append(_texts(step["evidence"]))
            else:
                out.append(self._catalogued(rec, str(step.get("step") or "")))
        return out

    def deciding(
        self, rec: dict[str, Any], evidence: list[dict[str, str]]
    ) -> tuple[int, dict[str, str]] | None:
        """The step that decided the outcome (``expected.step``) as (its index in ``steps``,
        or -1 when it left no step record, and its evidence), given ``of_steps(rec)``; None
        when that is not a step of the catalogue (a handshake, a regression replay)."""
        expected = rec.get("expected")
        label = expected.get("step") if isinstance(expected, dict) else None
        if not isinstance(label, str) or not _LABEL.match(label):
            return None
        steps = rec.get("steps")
        steps = steps if isinstance(steps, list) else []
        labels = [s.get("step") if isinstance(s, dict) else None for s in steps]
        if label in labels:
            index = labels.index(label)
            return index, evidence[index]
        return -1, self._catalogued(rec, label)


def _sizes(members: dict[str, int], keys: list[str]) -> str:
    return ", ".join(f"{k} = {members[k]}" if k in members else f"{k} not checked" for k in keys)


def _difference(step: Step) -> tuple[str, str] | None:
    """(documented, windows) expectation of a step whose windows entry differs."""
    status_doc = status_win = ""
    if step.expect is not None:
        status_doc = step.expect.for_profile("documented")
        status_win = step.expect.for_profile("windows")
    sizes = step.expect_sizes or {}
    size_doc, size_win = sizes.get("documented", {}), sizes.get("windows")
    sizes_differ = size_win is not None and size_win != size_doc
    if status_doc == status_win and not sizes_differ:
        return None
    if not sizes_differ:
        return status_doc, status_win
    keys = sorted(set(size_doc) | set(size_win or {}))
    return (
        ", ".join(filter(None, (status_doc, _sizes(size_doc, keys)))),
        ", ".join(filter(None, (status_win, _sizes(size_win or {}, keys)))),
    )


def windows_differences(scenarios: Sequence[Scenario]) -> list[dict[str, str]]:
    """Every catalogue step whose windows expectation (status or sizes) differs from the
    documented one, with the evidence for it: the report's "Where the windows profile
    differs"."""
    rows: list[dict[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    for scenario in scenarios:
        for _values, steps in scenario.expansions or (((), scenario.steps),):
            for index, step in enumerate(steps):
                found = _difference(step)
                if found is None:
                    continue
                evidence = _texts(step.expect.evidence if step.expect else {})
                row = {
                    "scenario": scenario.id,
                    "step": f"{index}:{step.op}/{step.by}",
                    "documented": found[0],
                    "windows": found[1],
                    "evidence": evidence.get("windows", ""),
                }
                key = tuple(row.values())
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
    return rows


def why_label(profile: str) -> str:
    return f"Why ({profile} profile)"


__all__ = [
    "NO_WINDOWS_EVIDENCE",
    "Evidence",
    "shipped_scenarios",
    "why_label",
    "windows_differences",
]
