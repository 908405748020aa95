"""Single-file HTML report: summary, interop matrix, adapter × case matrix and drill-downs.

The file works offline and stays safe when an implementation under test put markup in its
output:

- no external resources, and a Content-Security-Policy that forbids fetching anything and
  runs only the one inline script whose hash it names;
- the static parts are rendered by jinja2 with autoescape;
- the records travel as one JSON blob in ``<script type="application/json">`` (never
  executed; ``<``, ``>`` and ``&`` are written as ``\\u003c``… so no ``</script>`` or
  ``<!--`` can end it early), and the script builds the matrix and drill-downs with
  ``textContent``/``setAttribute`` only, never ``innerHTML``.

It stays fast with 100,000 results: the blob is compact (repeated strings and structures are
stored once and referred to by index), the matrix is paged (filters work on the data, not
on the DOM) and a drill-down is built only when opened.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from harness.report.campaign import Campaign, campaign_fragment
from harness.report.dissect import dissect_hex, ess_of, hex_runs
from harness.report.evidence import (
    NO_WINDOWS_EVIDENCE,
    Evidence,
    shipped_scenarios,
    why_label,
    windows_differences,
)
from harness.report.summary import OUTCOMES, is_interop
from harness.scenarios.model import Scenario
from harness.sspi.constants import SECBUFFER_ATTRMASK, BufferType, SecStatus, status_name

#: Matrix rows per page in the browser.
PAGE_SIZE = 200
#: Bytes of one buffer shown in hex (a fuzzed token can be a megabyte).
MAX_HEX_BYTES = 4096
#: Characters of a fatal call shown.
MAX_CALL_TEXT = 20000
#: Cases listed per scenario family in the static Deviations section; the page's script
#: lists the rest on demand (the matrix has all of them too).
FAMILY_SHOWN = 10
#: Characters of a message shown in the Deviations lists.
MESSAGE_SHOWN = 240
#: Baseline regressions / unexpected passes listed statically.
GATE_SHOWN = 200
#: Outcome keys the script and the CSS know; anything else is UNKNOWN.
KEYS: tuple[str, ...] = (*OUTCOMES, "UNKNOWN")
GATES = ("REGRESSION", "XPASS", "XFAIL", "OK")
#: The matrix column of interop records (client × server conversations).
INTEROP_COLUMN = "interop"

_META_KEYS = (
    "adapter",
    "kind",
    "peer",
    "role",
    "title",
    "scenario",
    "variant",
    "profile",
    "source",
)
_RESULT_KEYS = ("outcome", "message", "expected", "actual", "steps")
_TEMPLATES = Path(__file__).resolve().parent / "templates"
_HASH_PLACEHOLDER = "__SSPI_SCRIPT_HASH__"
_SCRIPT = re.compile(r'<script id="report-js">(.*?)</script>', re.DOTALL)
_MIRROR = re.compile(r"buffer (\d+) differs from the reference's: ([0-9a-f]*) vs ([0-9a-f]*)")
_HOLDS = re.compile(r"buffer (\d+) holds ([0-9a-f]*), expected ([0-9a-f]*)")
_CALL_BUFFER = re.compile(r"'type': (\d+), 'data': '([0-9a-f]*)'")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


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
    return outcome if outcome in OUTCOMES else "UNKNOWN"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def status_text(value: Any) -> str:
    """A status as a C programmer reads it: the symbolic name and the hex value."""
    if isinstance(value, int) and not isinstance(value, bool):
        name, code = status_name(value), value & 0xFFFFFFFF
    elif isinstance(value, str) and value in SecStatus.__members__:
        name, code = value, int(SecStatus[value])
    else:
        return _text(value)
    return name if name.startswith("0x") else f"{name} (0x{code:08X})"


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
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return ""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _millis(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return round(seconds * 1000, 3)


def _is_hex(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and _HEX.fullmatch(value) is not None


def script_json(data: Any) -> str:
    """JSON that can sit inside ``<script type="application/json">``: nothing in it can close
    the element or open a comment, and it still parses to the same value."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


class _Table:
    """Interned values: each distinct string or structure is stored once; index 0 is null."""

    def __init__(self) -> None:
        self.values: list[Any] = [None]
        self._index: dict[Any, int] = {}

    def add(self, value: Any) -> int:
        if value is None or value == "" or value == [] or value == {}:
            return 0
        # repr is a faithful key for the str/int/float/list/dict values built here (dicts are
        # built in a fixed key order) and much faster than json.dumps on 100,000 records.
        key: Any = value if isinstance(value, str) else (type(value).__name__, repr(value))
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.values)
            self.values.append(value)
        return found


class _Budget:
    """Scapy dissections per report: signatures are cheap, handshake tokens are not."""

    def __init__(self, tokens: int = 2000, signatures: int = 50000) -> None:
        self.left = {"token": tokens, "signature": signatures}

    def take(self, hex_text: str) -> bool:
        kind = "token" if hex_text.startswith("4e544c4d53535000") else "signature"
        if self.left[kind] <= 0:
            return False
        self.left[kind] -= 1
        return True


class _Builder:
    """Turns records into the compact blob the page's script reads."""

    def __init__(self, adapters: list[str], evidence: Evidence) -> None:
        self.table = _Table()
        self.evidence = evidence
        self.adapters = adapters
        self.adapter_index = {a: i for i, a in enumerate(adapters)}
        self.budget = _Budget()
        self.previous_case: str | None = None
        self._memo: dict[tuple[str, str], int] = {}

    def _memoized(self, kind: str, raw: Any, build: Any) -> int:
        """Intern ``build()``, computed once per distinct raw input (records repeat a lot)."""
        key = (kind, repr(raw))
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self.table.add(build())
        return found

    # -- pieces ----------------------------------------------------------------------------

    def _dissection(self, hex_text: str, ess: bool | None) -> int:
        if not hex_text or not self.budget.take(hex_text):
            return 0
        return self.table.add(dissect_hex(hex_text[: 2 * 65536 + 2], ess))

    def _bytes(self, name: str, hex_text: str, ess: bool | None) -> dict[str, Any]:
        shown = hex_text[: 2 * MAX_HEX_BYTES]
        out: dict[str, Any] = {"name": name, "hex": shown, "len": len(hex_text) // 2}
        dis = self._dissection(hex_text, ess)
        if dis:
            out["dis"] = dis
        return out

    def _pairs(self, value: Any, other: Any) -> list[list[Any]]:
        """[key, shown value, differs] rows for one side of expected vs actual."""
        if not isinstance(value, dict):
            if value in (None, {}, ""):
                return []
            return [["(value)", _text(value), int(value != other)]]
        other = other if isinstance(other, dict) else {}
        rows = []
        for key in sorted(value, key=_text):
            item = value[key]
            if key == "status":
                shown = status_text(item)
            elif key == "fatal_call" and isinstance(item, str) and len(item) > 160:
                shown = item[:159] + "… (the whole call is shown below)"
            elif isinstance(item, str):
                shown = item if len(item) <= 2000 else item[:1999] + "…"
            else:
                shown = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
            rows.append([_text(key), shown, int(key not in other or other.get(key) != item)])
        return rows

    def _steps(self, value: Any, evidence: list[dict[str, str]]) -> list[list[Any]]:
        """[step, status, expected, ok, detail] rows, then [[profile, text], …] when the
        step has evidence (interned: the same texts recur in thousands of records)."""
        if not isinstance(value, list):
            return []
        rows = []
        for step, why in zip(value, evidence, strict=True):
            if not isinstance(step, dict):
                step = {"detail": step}
            ok = step.get("ok")
            row = [
                _text(step.get("step")),
                status_text(step.get("status")),
                status_text(step.get("expected")),
                1 if ok is True else (0 if ok is False else None),
                _text(step.get("detail")),
            ]
            if why:
                row.append(self.table.add(_ordered_evidence(why)))
            rows.append(row)
        return rows

    def _extras(self, rec: dict[str, Any], pcap: str | None) -> dict[str, Any]:
        ess = ess_of(rec.get("variant"))
        expected, actual = rec.get("expected"), rec.get("actual")
        expected = expected if isinstance(expected, dict) else {}
        actual = actual if isinstance(actual, dict) else {}
        message = _text(rec.get("message"))
        adapter = _text(rec.get("adapter"))
        out: dict[str, Any] = {}
        diffs: list[dict[str, Any]] = []
        want, got = expected.get("buffer"), actual.get("buffer")
        if _is_hex(want) and _is_hex(got):
            diffs.append(
                {
                    "title": "buffer: expected by the case vs produced",
                    "left": self._bytes("expected", want.lower(), ess),
                    "right": self._bytes("actual", got.lower(), ess),
                }
            )
        mirror = _MIRROR.search(message)
        holds = _HOLDS.search(message)
        if mirror:
            diffs.append(
                {
                    "title": f"buffer {mirror.group(1)}: the reference's mirror vs {adapter}",
                    "left": self._bytes("reference", mirror.group(3), ess),
                    "right": self._bytes(adapter or "actual", mirror.group(2), ess),
                }
            )
        elif holds and not diffs:
            diffs.append(
                {
                    "title": f"buffer {holds.group(1)}: expected vs produced",
                    "left": self._bytes("expected", holds.group(3), ess),
                    "right": self._bytes("actual", holds.group(2), ess),
                }
            )
        if diffs:
            out["diffs"] = diffs
        found: list[dict[str, Any]] = []
        fatal = actual.get("fatal_call")
        if isinstance(fatal, str) and fatal:
            out["fatal"] = fatal if len(fatal) <= MAX_CALL_TEXT else fatal[:MAX_CALL_TEXT] + "…"
            seen = set()
            for i, m in enumerate(_CALL_BUFFER.finditer(fatal)):
                seen.add(m.group(2))
                found.append(
                    self._bytes(f"pBuffers[{i}] {_buffer_type(m.group(1))}", m.group(2), ess)
                )
            for run in hex_runs(fatal):
                if run not in seen:
                    seen.add(run)
                    what = "handshake token" if run.startswith("4e544c4d53535000") else "bytes"
                    found.append(self._bytes(f"{what} passed to the call", run, ess))
        for source in (rec.get("handshake"), actual.get("handshake")):
            if isinstance(source, list):
                for leg, item in enumerate(source):
                    raw = item.get("token") if isinstance(item, dict) else item
                    side = item.get("from") if isinstance(item, dict) else None
                    if _is_hex(raw) and raw:
                        who = f" from the {side}" if side in ("client", "server") else ""
                        found.append(self._bytes(f"leg {leg + 1}{who}", raw.lower(), ess))
                break
        if found:
            out["bytes"] = found
        if pcap:
            out["pcap"] = pcap
        return out

    # -- a record --------------------------------------------------------------------------

    def _meta(self, rec: dict[str, Any]) -> list[Any]:
        """Who and what: the same for every variant run of a scenario by one adapter."""
        add = self.table.add
        raw_source = rec.get("source")
        source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
        url = safe_url(source.get("url"))
        src = [
            _text(source.get("ref")),
            _text(source.get("quote")),
            url or _text(source.get("url")),
            1 if url else 0,
        ]
        adapter = _text(rec.get("adapter") or "unknown")
        column = _column(rec)
        return [
            self.adapter_index[column],
            add(_text(rec.get("kind") or "conformance")),
            add(_text(rec.get("peer"))),
            add(_text(rec.get("role"))),
            add(_text(rec.get("title"))),
            add(_text(rec.get("scenario"))),
            add(_text(rec.get("variant"))),
            add(_text(rec.get("profile"))),
            add(src if any(src) else None),
            add(adapter if adapter != column else None),  # the client of an interop record
        ]

    def _result(
        self,
        rec: dict[str, Any],
        evidence: list[dict[str, str]],
        deciding: tuple[int, dict[str, str]] | None,
    ) -> list[Any]:
        """What happened: outcome, message, expected vs actual, steps; then the index of the
        step that decided (-1: none) and 1 when that step has no Windows evidence."""
        outcome = _text(rec.get("outcome") or "ERROR")
        expected, actual = rec.get("expected"), rec.get("actual")
        return [
            outcome,
            KEYS.index(_outcome_key(outcome)),
            _text(rec.get("message")),
            self._pairs(expected, actual),
            self._pairs(actual, expected),
            self._steps(rec.get("steps"), evidence),
            -1 if deciding is None else deciding[0],
            int(deciding is not None and "windows" not in deciding[1]),
        ]

    def record(self, rec: dict[str, Any], pcap: str | None) -> list[Any]:
        add = self.table.add
        raw_meta = [rec.get(k) for k in _META_KEYS]
        meta = self._memoized("meta", raw_meta, lambda: self._meta(rec))
        evidence = self.evidence.of_steps(rec)
        deciding = self.evidence.deciding(rec, evidence)
        raw_result = [rec.get(k) for k in _RESULT_KEYS] + [evidence, deciding]
        result = self._memoized(
            "result", raw_result, lambda: self._result(rec, evidence, deciding)
        )
        case = _text(rec.get("case") or rec.get("scenario") or "unnamed")
        reproducer = _text(rec.get("reproducer"))
        if case and reproducer.count(case) == 1:  # share the command's shape between cases
            before, after = reproducer.split(case)
            repro = add([before, after])
        else:
            repro = add(reproducer)
        gate = rec.get("gate")
        gate_ref = 0
        if gate is not None:
            gate_ref = add(
                [
                    _text(gate) if gate in GATES else f"?{_text(gate)}",
                    _text(rec.get("baseline_outcome")),
                    _text(rec.get("baseline_reason")),
                ]
            )
        row: list[Any] = [
            0 if case == self.previous_case else case,  # rows share the id: 0 = as before
            meta,
            result,
            _millis(rec.get("duration_s")),
            repro,
            gate_ref,
            add(self._extras(rec, pcap)),
        ]
        self.previous_case = case
        while row and row[-1] in (0, None):
            row.pop()
        return row


def _ordered_evidence(why: dict[str, str]) -> list[list[str]]:
    """[[profile, text], …]: documented first, then windows, then any other profile."""
    order = {"documented": 0, "windows": 1}
    return [[k, why[k]] for k in sorted(why, key=lambda k: (order.get(k, 2), k))]


def _column(rec: dict[str, Any]) -> str:
    """The matrix column of a record: its adapter, or the interop column for a client × server
    conversation (which must not count against the client adapter's column)."""
    return INTEROP_COLUMN if is_interop(rec) else _text(rec.get("adapter") or "unknown")


def _buffer_type(raw: str) -> str:
    value = int(raw)
    try:
        name = f"SECBUFFER_{BufferType(value & ~SECBUFFER_ATTRMASK).name}"
    except ValueError:
        name = f"type {value:#x}"
    if value & 0x80000000:
        name += "|READONLY"
    if value & 0x10000000:
        name += "|READONLY_WITH_CHECKSUM"
    return name


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
        if n > 0:
            out.append({"name": _text(key), "count": n, "css": outcome_class(key)})
    total = sum(b["count"] for b in out) or 1
    x = 0.0
    for b in out:
        b["x"] = f"{x:.3f}"
        b["pct"] = f"{100.0 * b['count'] / total:.3f}"
        x += 100.0 * b["count"] / total
    return out


def _worst(outcomes: list[str]) -> str:
    """The outcome that says most about a group: a failure beats a pass."""
    for outcome in ("CRASH", "TIMEOUT", "ERROR", "FAIL", "NON_STRICT", "PASS", "UNSUPPORTED"):
        if outcome in outcomes:
            return outcome
    return outcomes[0] if outcomes else "UNSUPPORTED"


def _interop(views: list[dict[str, Any]]) -> dict[str, Any]:
    """Client × server cells over the interop conversations; the diagonal is each adapter's
    own conformance result on the same scenarios."""
    pairs = [v for v in views if v["kind"] == "interop"]
    if not pairs:
        return {}
    scenarios = {v["scenario"] for v in pairs}
    names = sorted({v["adapter"] for v in views} | {v["peer"] for v in pairs if v["peer"]})
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for v in pairs:
        cells.setdefault((v["adapter"], v["peer"]), []).append(v)
    for v in views:
        if v["kind"] == "conformance" and v["scenario"] in scenarios:
            cells.setdefault((v["adapter"], v["adapter"]), []).append(v)
    rows = []
    for client in names:
        row = []
        for server in names:
            group = cells.get((client, server), [])
            outcome = _worst([g["outcome"] for g in group]) if group else ""
            first = next((g for g in group if g["outcome"] == outcome), None)
            row.append(
                {
                    "server": server,
                    "outcome": outcome,
                    "css": outcome_class(outcome) if group else "empty",
                    "passed": sum(g["outcome"] == "PASS" for g in group),
                    "total": len(group),
                    "anchor": first["anchor"] if first else "",
                }
            )
        rows.append({"client": client, "cells": row})
    return {"names": names, "rows": rows, "scenarios": sorted(scenarios)}


_SEVERITY = {o: i for i, o in enumerate(("CRASH", "TIMEOUT", "ERROR", "FAIL", "NON_STRICT"))}


def _severity(outcome: str) -> int:
    """Worst first; an outcome nobody knows is suspect enough to come first of all."""
    return _SEVERITY.get(outcome, -1)


def _family(view: dict[str, Any]) -> str:
    return view["scenario"] or view["case"].split("[", 1)[0]


def _listed(view: dict[str, Any], evidence: Evidence) -> dict[str, Any]:
    """A case as the Deviations list shows it: a short message, and why for NON_STRICT."""
    message = view["message"]
    short = message if len(message) <= MESSAGE_SHOWN else message[:MESSAGE_SHOWN] + "…"
    return {**view, "short": short, "why": _why(view["rec"], view["outcome"], evidence)}


def _deviations(
    views: list[dict[str, Any]], evidence: Evidence
) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Per adapter, what did not pass outside the interop matrix (alone, against the
    reference, regression replays), grouped by scenario family with counts per outcome:
    worst families and cases first, ``FAMILY_SHOWN`` cases listed per family. Also, per
    family with more, the record indexes of all its cases for the page's "show all"."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for v in views:
        if v["kind"] != "interop" and v["outcome"] not in ("PASS", "UNSUPPORTED"):
            found.setdefault(v["adapter"], {}).setdefault(_family(v), []).append(v)
    out: list[dict[str, Any]] = []
    more: list[list[int]] = []
    for adapter in sorted(found):
        families: list[dict[str, Any]] = []
        for name, cases in found[adapter].items():
            cases.sort(key=lambda v: _severity(v["outcome"]))  # stable: case order within
            counts: dict[str, int] = {}
            for v in cases:
                counts[v["outcome"]] = counts.get(v["outcome"], 0) + 1
            family: dict[str, Any] = {
                "name": name,
                "total": len(cases),
                "badges": _badges(counts),
                "cases": [_listed(v, evidence) for v in cases[:FAMILY_SHOWN]],
                "group": -1,
            }
            if len(cases) > FAMILY_SHOWN:
                family["group"] = len(more)
                more.append([v["index"] for v in cases])
            families.append(family)
        families.sort(key=lambda f: (_severity(f["cases"][0]["outcome"]), f["name"]))
        total = sum(f["total"] for f in families)
        out.append({"adapter": adapter, "total": total, "families": families})
    return out, more


def _gates(views: list[dict[str, Any]]) -> dict[str, Any]:
    """The diff against the baseline, when the run was gated."""
    gated = [v for v in views if v["gate"]]
    if not gated:
        return {}
    counts = {g: sum(v["gate"] == g for v in gated) for g in GATES}
    listed = [v for v in gated if v["gate"] in ("REGRESSION", "XPASS")]
    return {
        "counts": counts,
        "ok": not listed,
        "listed": listed[:GATE_SHOWN],
        "more": max(0, len(listed) - GATE_SHOWN),
    }


def _why(rec: dict[str, Any], outcome: str, evidence: Evidence) -> list[str]:
    """For a NON_STRICT record of a windows-profile run: why the deciding step expects what
    it does (the behaviour seen is only the other profile's), or that nobody recorded it."""
    if outcome != "NON_STRICT" or rec.get("profile") != "windows":
        return []
    deciding = evidence.deciding(rec, evidence.of_steps(rec))
    if deciding is None:
        return []
    why = _ordered_evidence(deciding[1])
    lines = [f"{why_label(profile)}: {text}" for profile, text in why]
    if not any(profile == "windows" for profile, _ in why):
        lines.append(NO_WINDOWS_EVIDENCE)
    return lines


def _view(rec: dict[str, Any], index: int) -> dict[str, Any]:
    """The few fields the static sections need."""
    outcome = _text(rec.get("outcome") or "ERROR")
    gate = rec.get("gate")
    return {
        "index": index,
        "anchor": f"case-{index}",
        "case": _text(rec.get("case") or rec.get("scenario") or "unnamed"),
        "scenario": _text(rec.get("scenario")),
        "adapter": _text(rec.get("adapter") or "unknown"),
        "kind": _text(rec.get("kind") or "conformance"),
        "peer": _text(rec.get("peer")),
        "outcome": outcome,
        "css": outcome_class(outcome),
        "message": _text(rec.get("message")),
        "rec": rec,
        "gate": gate if gate in GATES else "",
        "baseline_outcome": _text(rec.get("baseline_outcome")),
        "baseline_reason": _text(rec.get("baseline_reason")),
    }


def render_html(
    records: Iterable[dict[str, Any]],
    summary: dict[str, Any],
    *,
    title: str = "SSPI conformance report",
    pcaps: Mapping[int, str] | None = None,
    campaigns: Sequence[Markup] = (),
    catalogue: Sequence[Scenario] | None = None,
) -> str:
    """Render the report to a string. ``pcaps`` maps a record's position in ``records`` to
    the path of its pcap relative to the report; ``campaigns`` are fuzz campaign fragments
    (``campaign.campaign_fragment``) for the "Fuzz campaigns" section; ``catalogue`` (default:
    the shipped one) gives the steps' evidence and "Where the windows profile differs"."""
    pcaps = pcaps or {}
    scenarios = shipped_scenarios() if catalogue is None else catalogue
    evidence = Evidence(scenarios)
    indexed = [(i, r) for i, r in enumerate(records) if isinstance(r, dict)]
    singles = {_column(r) for _, r in indexed}
    adapters = sorted(singles - {INTEROP_COLUMN})
    adapters += [INTEROP_COLUMN] if INTEROP_COLUMN in singles else []
    column = {a: i for i, a in enumerate(adapters)}

    def order(item: tuple[int, dict[str, Any]]) -> tuple[str, str, int, int]:
        i, r = item
        case = _text(r.get("case") or r.get("scenario") or "unnamed")
        return (_text(r.get("scenario")), case, column[_column(r)], i)

    indexed.sort(key=order)
    builder = _Builder(adapters, evidence)
    rows = [builder.record(r, pcaps.get(i)) for i, r in indexed]
    views = [_view(r, n) for n, (_, r) in enumerate(indexed)]
    deviations, deviation_groups = _deviations(views, evidence)
    present: dict[str, int] = {}
    for v in views:
        key = _outcome_key(v["outcome"])
        present[key] = present.get(key, 0) + 1
    gates = _gates(views)
    data = {
        "v": 1,
        "adapters": adapters,
        "keys": list(KEYS),
        "t": builder.table.values,
        "r": rows,
        "pageSize": PAGE_SIZE,
        "gated": bool(gates),
        "dev": deviation_groups,
        "noWindows": NO_WINDOWS_EVIDENCE,
        "messageShown": MESSAGE_SHOWN,
    }
    summary = summary if isinstance(summary, dict) else {}
    raw_adapters, raw_pairs = summary.get("adapters"), summary.get("interop")
    adapter_counts: dict[str, Any] = raw_adapters if isinstance(raw_adapters, dict) else {}
    pair_counts: dict[str, Any] = raw_pairs if isinstance(raw_pairs, dict) else {}
    notes = summary.get("notes")
    context = {
        "title": _text(title),
        "summary": {
            "cases": _text(summary.get("cases", len(indexed))),
            "duration": _duration(summary.get("duration_s")),
            "started": _text(summary.get("started")),
            "finished": _text(summary.get("finished")),
            "profile": _text(summary.get("profile")),
            "harness_version": _text(summary.get("harness_version")),
        },
        "totals": _badges(summary.get("totals") or present),
        "notes": [_text(n) for n in notes if n] if isinstance(notes, list) else [],
        "adapter_rows": [
            {"name": _text(name), "badges": _badges(counts)}
            for name, counts in adapter_counts.items()
        ],
        "pair_rows": [
            {"name": _text(name), "badges": _badges(counts)} for name, counts in pair_counts.items()
        ],
        "filter_outcomes": [
            {"name": k, "css": outcome_class(k), "count": present[k]} for k in KEYS if k in present
        ],
        "interop": _interop(views),
        "interop_column": INTEROP_COLUMN in column,
        "deviations": deviations,
        "family_shown": FAMILY_SHOWN,
        "differences": windows_differences(scenarios),
        "gates": gates,
        "page_size": PAGE_SIZE,
        "pcap_count": len(pcaps),
        "campaigns": list(campaigns),
        "data_json": script_json(data),
        "script_hash": _HASH_PLACEHOLDER,
    }
    html = _env().get_template("report.html.j2").render(**context)
    return _pin_script(html)


def _pin_script(html: str) -> str:
    """Name the inline script's hash in the CSP, so it is the only script that can run."""
    found = _SCRIPT.search(html)
    if found is None:
        raise RuntimeError("report template lost its script")
    digest = base64.b64encode(hashlib.sha256(found.group(1).encode("utf-8")).digest()).decode()
    return html.replace(_HASH_PLACEHOLDER, f"sha256-{digest}", 1)


def _campaign_link(campaign: Campaign, report_dir: Path) -> str | None:
    """The campaign page relative to the report, when there is one to open."""
    page = campaign.directory / "campaign.html"
    if not page.is_file():
        return None
    return quote(Path(os.path.relpath(page.resolve(), report_dir.resolve())).as_posix())


def write_html(
    records: Iterable[dict[str, Any]],
    summary: dict[str, Any],
    path: str | os.PathLike[str],
    *,
    title: str = "SSPI conformance report",
    pcap_dir: str | None = "pcaps",
    campaigns: Sequence[Campaign] = (),
) -> Path:
    """Write the report atomically, so a viewer never sees a truncated file; with
    ``pcap_dir``, also a pcap per failing case with handshake tokens (beside the report,
    linked from its drill-down); ``campaigns`` get a "Fuzz campaigns" section."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    recs = list(records)
    links: dict[int, str] = {}
    if pcap_dir:
        from harness.report.pcap import write_pcaps

        links = write_pcaps(recs, target.parent / pcap_dir)
    fragments = [
        campaign_fragment(c.data, href=_campaign_link(c, target.parent)) for c in campaigns
    ]
    html = render_html(recs, summary, title=title, pcaps=links, campaigns=fragments)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8", errors="replace")
    os.replace(tmp, target)
    return target


__all__ = [
    "PAGE_SIZE",
    "outcome_class",
    "render_html",
    "safe_url",
    "script_json",
    "status_text",
    "write_html",
]
