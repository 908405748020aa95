"""Regression vectors: findings turned into inputs every later ``sspi-harness run`` replays.

A vector is ``vectors/regressions/<target>-<hash>.json`` (format in that folder's README.md):
the target, the (minimized) input as hex, the finding it once produced and with which adapter,
and what a correct implementation does instead (``expected``: no finding at all: no crash, no
exception, no acceptance of what the reference rejects…). ``replay_regressions(adapter)``
replays every vector against one adapter, each against fresh contexts, and returns one
results.jsonl-shaped record per vector (``kind`` "regression").
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

SCHEMA = "sspi-harness/fuzz-regression/1"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIRECTORY = REPO / "vectors" / "regressions"
_ID = re.compile(r"^[a-z]+-[0-9a-f]{12}$")

EXPECTED_TEXT = {
    "crash": "the process survives (a status comes back)",
    "hang": "an answer within the timeout",
    "exception": "a status comes back: no exception escapes the adapter",
    "internal-error": "a status comes back: no Python exception escapes the implementation",
    "oracle-exception": "a status comes back: no exception escapes the reference",
    "accepts-rejected": "what the reference rejects is not accepted",
    "wrote-readonly": "read-only buffers stay untouched",
    "differential": "the adapter and the reference agree (accept/reject, bytes on success)",
    "property": "the sign/seal round-trip property holds",
}


class RegressionError(ValueError):
    """A malformed regression vector; the text names the file and the field."""


def _shown(path: Path) -> str:
    """A path as a reproducer shows it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def vector_from_finding(
    record: dict[str, Any], directory: Path = DEFAULT_DIRECTORY
) -> dict[str, Any]:
    """A regression vector from a triaged finding record (harness.fuzzing.triage), to be
    written into ``directory``."""
    kind = record["kind"]
    data_hex = record.get("minimized_hex") or record["input_hex"]
    vid = record["id"]
    return {
        "schema": SCHEMA,
        "id": vid,
        "target": record["target"],
        "profile": record.get("profile", "accept-reject"),
        "found_with": {
            "adapter": record["adapter"],
            "isolation": record.get("isolation", "auto"),
            "date": record.get("found", ""),
            "confirmed": bool(record.get("confirmed", False)),
        },
        "finding": {
            "kind": kind,
            "signature": record["signature"],
            "message": record["message"],
        },
        "input_hex": data_hex,
        "expected": {"finding": None, "text": EXPECTED_TEXT.get(kind, "no finding")},
        "reproducer": (
            f"sspi-harness fuzz --adapter {record['adapter']} --replay "
            f"{_shown(directory / f'{vid}.json')}"
        ),
    }


def write_vector(directory: Path, vector: dict[str, Any]) -> Path:
    """Write ``vector`` as ``<id>.json`` (an existing file with that id is kept)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{vector['id']}.json"
    if path.exists():
        return path
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(vector, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load_vector(path: Path) -> dict[str, Any]:
    """A vector, checked; RegressionError (one line) when it is malformed."""
    from harness.fuzzing import TARGET_NAMES

    try:
        vector = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegressionError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(vector, dict):
        raise RegressionError(f"{path}: a regression vector is a JSON object")
    if vector.get("schema") != SCHEMA:
        raise RegressionError(f"{path}: schema is {vector.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("id", "target", "input_hex", "finding", "expected"):
        if key not in vector:
            raise RegressionError(f"{path}: missing {key!r}")
    if vector["target"] not in TARGET_NAMES:
        raise RegressionError(f"{path}: unknown target {vector['target']!r}")
    if not isinstance(vector["id"], str) or not _ID.match(vector["id"]):
        raise RegressionError(f"{path}: id {vector['id']!r} is not <target>-<12 hex digits>")
    try:
        bytes.fromhex(vector["input_hex"])
    except (TypeError, ValueError):
        raise RegressionError(f"{path}: input_hex is not hexadecimal") from None
    finding = vector["finding"]
    if not isinstance(finding, dict) or not {"kind", "signature"} <= set(finding):
        raise RegressionError(f"{path}: finding needs 'kind' and 'signature'")
    return dict(vector)


def vector_paths(directory: Path | None = None) -> list[Path]:
    folder = DEFAULT_DIRECTORY if directory is None else directory
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if p.is_file())


def _record(
    vector: dict[str, Any] | None,
    path: Path,
    adapter: str,
    outcome: str,
    message: str,
    duration: float,
    actual: dict[str, Any],
) -> dict[str, Any]:
    vid = vector["id"] if vector else path.stem
    target = vector["target"] if vector else "?"
    finding = (vector or {}).get("finding", {})
    ref = _shown(path)
    return {
        "case": f"regression[{vid}]",
        "scenario": "regression",
        "variant": target,
        "adapter": adapter,
        "kind": "regression",
        "peer": "reference",
        "role": None,
        "profile": (vector or {}).get("profile", "accept-reject"),
        "outcome": outcome,
        "message": message,
        "duration_s": round(duration, 6),
        "title": f"Fuzz regression ({target}): {finding.get('message', 'malformed vector')}",
        "source": {"ref": ref, "quote": finding.get("signature", ""), "url": None},
        "expected": (vector or {}).get("expected", {"finding": None}),
        "actual": actual,
        "steps": [],
        "reproducer": f"sspi-harness fuzz --adapter {adapter} --replay {ref}",
    }


def replay_vector(
    vector: dict[str, Any], adapter: str, *, replayers: dict[Any, Any], timeout_s: float = 5.0
) -> tuple[str, str, dict[str, Any]]:
    """(outcome, message, actual) of one vector against ``adapter``."""
    from harness.adapters.registry import load_adapter
    from harness.fuzzing.targets import OUTCOME_OF_KIND
    from harness.fuzzing.triage import Replayer

    kind = vector["finding"]["kind"]
    isolate = kind in ("crash", "hang") or load_adapter(adapter).isolate
    isolation = "worker" if isolate else "none"
    key = (vector["target"], isolation, vector.get("profile", "accept-reject"))
    replayer = replayers.get(key)
    if replayer is None:
        extra: dict[str, Any] = {}
        if vector["target"] == "properties":
            from hypothesis.database import InMemoryExampleDatabase

            extra["database"] = InMemoryExampleDatabase()
        replayer = Replayer.open(
            vector["target"],
            adapter,
            isolation=isolation,
            timeout_s=timeout_s,
            profile=key[2],
            **extra,
        )
        replayers[key] = replayer
    result = replayer.run(bytes.fromhex(vector["input_hex"]))
    actual: dict[str, Any] = {
        "finding": None if result.finding is None else result.finding.to_json(),
        "ops": result.ops,
        "skipped": result.skipped,
    }
    if result.finding is not None:
        outcome = OUTCOME_OF_KIND.get(result.finding.kind, "FAIL")
        same = result.finding.signature == vector["finding"]["signature"]
        message = ("reproduces: " if same else "another finding: ") + result.finding.message
        return outcome, message, actual
    if result.ops == 0:
        why = "the adapter cannot express any operation of this input"
        return "UNSUPPORTED", why, actual
    return "PASS", f"{vector['expected'].get('text', 'no finding')} ({result.ops} calls)", actual


def replay_regressions(
    adapter_name: str,
    *,
    directory: Path | None = None,
    timeout_s: float = 5.0,
) -> list[dict[str, Any]]:
    """Replay every regression vector (default ``vectors/regressions``) against one adapter;
    one results.jsonl record per vector, ``kind`` "regression". Outcomes: PASS (no finding),
    FAIL / ERROR / CRASH / TIMEOUT (a finding, by its kind), UNSUPPORTED (the adapter could
    express none of the input's calls, or is not available), ERROR (a malformed vector)."""
    from harness.adapters.registry import load_adapter

    records: list[dict[str, Any]] = []
    paths = vector_paths(directory)
    if not paths:
        return records
    availability = load_adapter(adapter_name).available()
    replayers: dict[Any, Any] = {}
    try:
        for path in paths:
            started = time.perf_counter()
            try:
                vector = load_vector(path)
            except RegressionError as exc:
                records.append(
                    _record(
                        None,
                        path,
                        adapter_name,
                        "ERROR",
                        f"malformed regression vector: {exc}",
                        0.0,
                        {},
                    )
                )
                continue
            if not availability.ok:
                records.append(
                    _record(
                        vector,
                        path,
                        adapter_name,
                        "UNSUPPORTED",
                        f"{adapter_name}: {availability.reason}",
                        0.0,
                        {},
                    )
                )
                continue
            try:
                outcome, message, actual = replay_vector(
                    vector, adapter_name, replayers=replayers, timeout_s=timeout_s
                )
            except Exception as exc:  # noqa: BLE001 - one broken replay must not end the run
                outcome, message, actual = "ERROR", f"{type(exc).__name__}: {exc}", {}
            records.append(
                _record(
                    vector,
                    path,
                    adapter_name,
                    outcome,
                    message,
                    time.perf_counter() - started,
                    actual,
                )
            )
    finally:
        for replayer in replayers.values():
            try:
                replayer.close()
            except Exception:  # noqa: BLE001
                pass
    return records
