"""Baselines: a reviewed file of the outcomes expected per adapter and case, each with a
reason, and the gate that compares a run with it.

A baseline lets an SSP's CI pass while known deviations are being worked on, and fail on
anything new. An unexpected pass fails the gate too, so a fixed bug forces the baseline to be
updated (and the reason to go). Entries name cases exactly or with globs (``verify-replay[*]``)
so that one reason can cover a family; the first entry that matches a case wins.

``outcome`` is one outcome or a list of them: a list is for behaviour that is not
deterministic, such as a call on a freed context (a use-after-free hangs on one machine and
returns a status on another). The gate accepts any outcome in the list.

File shape (JSON)::

    {"schema": "sspi-harness-baseline/1",
     "adapters": {"pyspnego": [{"case": "verify-replay[*]", "outcome": "FAIL",
                                "reason": "reports a wrong SeqNum as SEC_E_MESSAGE_ALTERED"}]}}
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "sspi-harness-baseline/1"
FAILING = frozenset({"FAIL", "CRASH", "TIMEOUT", "ERROR"})
OUTCOMES = frozenset({"PASS", "NON_STRICT", "UNSUPPORTED", *FAILING})


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(regex, flags=re.DOTALL)


def case_matches(pattern: str, case_id: str) -> bool:
    """Glob matching for case ids: ``*`` and ``?`` are wildcards, everything else (brackets
    included, which every case id has) stands for itself."""
    return pattern == case_id or _glob(pattern).fullmatch(case_id) is not None


class BaselineError(ValueError):
    """A malformed baseline file; the text is one line naming the file and the problem."""


@dataclass(frozen=True)
class Entry:
    case: str  # exact id or glob
    outcome: str  # the first (or only) outcome expected
    reason: str
    also: tuple[str, ...] = ()  # further outcomes accepted for non-deterministic behaviour

    def matches(self, case_id: str) -> bool:
        return case_matches(self.case, case_id)

    @property
    def outcomes(self) -> tuple[str, ...]:
        return (self.outcome, *self.also)

    @property
    def failing(self) -> bool:
        """True when every accepted outcome is a failure (so a pass is an XPASS)."""
        return all(o in FAILING for o in self.outcomes)

    def describe(self) -> str:
        return " or ".join(self.outcomes)

    def as_json(self) -> str | list[str]:
        return self.outcome if not self.also else list(self.outcomes)


@dataclass
class Baseline:
    adapters: dict[str, list[Entry]] = field(default_factory=dict)

    def expected(self, adapter: str, case_id: str) -> Entry | None:
        return next((e for e in self.adapters.get(adapter, []) if e.matches(case_id)), None)


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline; any defect is a BaselineError, never a silent pass."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"baseline {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BaselineError(f"baseline {path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        raise BaselineError(f"baseline {path}: 'schema' must be {SCHEMA!r}")
    extra = set(raw) - {"schema", "adapters", "comment"}
    if extra:
        raise BaselineError(f"baseline {path}: unknown field(s) {', '.join(sorted(extra))}")
    adapters = raw.get("adapters")
    if not isinstance(adapters, dict):
        raise BaselineError(f"baseline {path}: 'adapters' must be an object of adapter: [entries]")
    baseline = Baseline()
    for adapter, entries in adapters.items():
        if not isinstance(entries, list):
            raise BaselineError(f"baseline {path}: adapters.{adapter} must be a list")
        parsed = []
        for i, entry in enumerate(entries):
            where = f"baseline {path}: adapters.{adapter}[{i}]"
            if not isinstance(entry, dict) or set(entry) != {"case", "outcome", "reason"}:
                raise BaselineError(f"{where} needs exactly 'case', 'outcome' and 'reason'")
            given = entry["outcome"]
            outcomes = given if isinstance(given, list) else [given]
            if not outcomes:
                raise BaselineError(f"{where}: 'outcome' must name at least one outcome")
            for outcome in outcomes:
                if not isinstance(outcome, str) or outcome not in OUTCOMES:
                    raise BaselineError(f"{where}: outcome {outcome!r} is not an outcome")
            if not isinstance(entry["reason"], str) or not entry["reason"].strip():
                raise BaselineError(f"{where}: every entry needs a reason")
            if not isinstance(entry["case"], str) or not entry["case"]:
                raise BaselineError(f"{where}: 'case' must be a case id or glob")
            parsed.append(Entry(entry["case"], outcomes[0], entry["reason"], tuple(outcomes[1:])))
        baseline.adapters[adapter] = parsed
    return baseline


@dataclass
class Review:
    """What a baseline says about a run before the gate: ``error`` (one line, exit 2) names
    adapter keys that no adapter answers to, a typo that would otherwise pass silently;
    ``stale`` (one warning line each) names entries that match no case of the run."""

    error: str = ""
    stale: list[str] = field(default_factory=list)


def _resolvable(name: str) -> bool:
    """Whether the registry knows an adapter by this name (built in, entry point or path)."""
    from harness.adapters.registry import UnknownAdapter, load_adapter, names

    if name in names():
        return True
    if ":" not in name:
        return False
    try:
        load_adapter(name)
    except UnknownAdapter:
        return False
    return True


def review(
    baseline: Baseline,
    path: Path,
    adapters: Collection[str],
    records: Iterable[dict[str, Any]] | None = None,
) -> Review:
    """Check a baseline against the adapters of a run and, given its records (a whole run:
    no ``--case`` filter), against its cases. A key for a known adapter that is simply not in
    this run is fine: one baseline file may serve several CI jobs."""
    result = Review()
    unknown = [a for a in baseline.adapters if a not in adapters and not _resolvable(a)]
    if unknown:
        keys = ", ".join(repr(a) for a in unknown)
        from harness.adapters.registry import names

        result.error = (
            f"baseline {path}: adapter key(s) {keys} name no adapter of this run "
            f"({', '.join(adapters)}) nor a known one ({', '.join(names())}; or "
            "package.module:Class)"
        )
    if records is None:
        return result
    cases: dict[str, set[str]] = {}
    for record in records:
        cases.setdefault(str(record.get("adapter")), set()).add(str(record.get("case")))
    for adapter, entries in baseline.adapters.items():
        if adapter not in adapters:
            continue
        ran = cases.get(adapter, set())
        for i, entry in enumerate(entries):
            if entry.case in ran or any(_glob(entry.case).fullmatch(c) for c in ran):
                continue
            result.stale.append(
                f"baseline {path}: adapters.{adapter}[{i}] {entry.case!r} matches no case "
                "of this run (stale: remove it)"
            )
    return result


@dataclass
class GateResult:
    """Records annotated with ``gate`` and the lists that decide the exit code."""

    regressions: list[dict[str, Any]] = field(default_factory=list)
    unexpected_passes: list[dict[str, Any]] = field(default_factory=list)
    expected_failures: int = 0

    @property
    def ok(self) -> bool:
        return not self.regressions and not self.unexpected_passes

    def lines(self) -> list[str]:
        out = [
            f"REGRESSION {r['adapter']} {r['case']}: {r['outcome']} "
            f"(baseline: {r.get('baseline_outcome', 'PASS')})"
            for r in self.regressions
        ]
        out += [
            f"XPASS      {r['adapter']} {r['case']}: passes now; baseline expected "
            f"{r['baseline_outcome']} ({r['baseline_reason']}): update the baseline"
            for r in self.unexpected_passes
        ]
        return out


def gate(records: Iterable[dict[str, Any]], baseline: Baseline) -> GateResult:
    """Compare each record with the baseline and mark it (``gate``: XFAIL, XPASS, REGRESSION,
    or OK). Outcomes that are not failures are fine when the baseline expects nothing."""
    result = GateResult()
    for record in records:
        entry = baseline.expected(str(record.get("adapter")), str(record.get("case")))
        outcome = str(record.get("outcome"))
        if entry is not None:
            record["baseline_outcome"], record["baseline_reason"] = entry.describe(), entry.reason
        if entry is not None and outcome in entry.outcomes:
            record["gate"] = "XFAIL" if outcome in FAILING else "OK"
            result.expected_failures += outcome in FAILING
        elif entry is not None and entry.failing and outcome not in FAILING:
            record["gate"] = "XPASS"
            result.unexpected_passes.append(record)
        elif outcome in FAILING or entry is not None:
            record["gate"] = "REGRESSION"
            result.regressions.append(record)
        else:
            record["gate"] = "OK"
    return result


def baseline_from(
    records: Iterable[dict[str, Any]], *, reason: str | None = None
) -> dict[str, Any]:
    """A baseline that expects exactly the failing outcomes of these records."""
    stamp = reason or f"recorded {time.strftime('%Y-%m-%d')}: review and explain"
    adapters: dict[str, list[dict[str, str]]] = {}
    for record in records:
        if record.get("outcome") in FAILING:
            adapters.setdefault(str(record["adapter"]), []).append(
                {"case": str(record["case"]), "outcome": str(record["outcome"]), "reason": stamp}
            )
    return {"schema": SCHEMA, "adapters": adapters}


def keep_reasons(new: dict[str, Any], old: Baseline | None) -> dict[str, Any]:
    """Carry reasons over from the old baseline where a case keeps an outcome it accepted
    (a list of accepted outcomes is kept whole, so one run does not narrow it)."""
    if old is None:
        return new
    for adapter, entries in new["adapters"].items():
        for entry in entries:
            previous = old.expected(adapter, entry["case"])
            if previous is not None and entry["outcome"] in previous.outcomes:
                entry["reason"], entry["outcome"] = previous.reason, previous.as_json()
    return new


def write_baseline(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
