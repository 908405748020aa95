"""Triage of findings: confirmation by replay, minimization, deduplication.

Deduplication is by construction: a finding is stored under ``<target>-<hash>`` where the hash
covers the target, the adapter and the finding's *signature* (kind, operation, statuses, or
exception type and place; for crashes the signal and the call), never the input bytes. A
finding is *confirmed* when its input, replayed alone against fresh contexts, gives the same
signature; it is then minimized by delta debugging (remove chunks, then simplify bytes) for
as long as the signature stays the same. Crashes and hangs are replayed with the adapter in a
worker subprocess, so that triage survives them too.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.fuzzing.targets import Finding, Target, make_target

DEFAULT_BUDGET_S = 20.0
DEFAULT_ATTEMPTS = 600


@dataclass
class Replayer:
    """A target instance that replays single inputs against fresh contexts."""

    target: Target

    @classmethod
    def open(
        cls,
        target: str,
        adapter: str,
        *,
        kind: str = "",
        isolation: str = "auto",
        timeout_s: float = 5.0,
        profile: str = "accept-reject",
        **extra: Any,
    ) -> Replayer:
        """Crashes and hangs always replay in a worker."""
        if kind in ("crash", "hang"):
            isolation = "worker"
        return cls(
            make_target(
                target, adapter, isolation=isolation, timeout_s=timeout_s, profile=profile, **extra
            )
        )

    def check(self, data: bytes) -> Finding | None:
        self.target.reset()
        return self.target.run(data).finding

    def run(self, data: bytes) -> Any:
        self.target.reset()
        return self.target.run(data)

    def close(self) -> None:
        self.target.close()


def minimize(
    replayer: Replayer,
    data: bytes,
    signature: str,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    max_attempts: int = DEFAULT_ATTEMPTS,
) -> tuple[bytes, int]:
    """The smallest input found (within the budget) that still gives ``signature``; and the
    number of attempts made. Chunks are removed from large to single bytes, then bytes are
    set to zero (the plainest choice for FuzzedDataProvider)."""
    deadline = time.monotonic() + budget_s
    attempts = 0

    def same(candidate: bytes) -> bool:
        nonlocal attempts
        attempts += 1
        found = replayer.check(candidate)
        return found is not None and found.signature == signature

    def spent() -> bool:
        return attempts >= max_attempts or time.monotonic() > deadline

    best = data
    chunk = max(len(best) // 2, 1)
    while chunk >= 1 and not spent():
        start = 0
        changed = False
        while start < len(best) and not spent():
            candidate = best[:start] + best[start + chunk :]
            if candidate != best and same(candidate):
                best, changed = candidate, True
            else:
                start += chunk
        if not changed:
            chunk //= 2
    for index in range(len(best)):
        if spent():
            break
        if best[index] == 0:
            continue
        candidate = best[:index] + b"\x00" + best[index + 1 :]
        if same(candidate):
            best = candidate
    return best, attempts


def triage_folder(
    folder: Path,
    *,
    minimize_inputs: bool = True,
    budget_s: float = DEFAULT_BUDGET_S,
    timeout_s: float = 5.0,
    profile: str = "accept-reject",
    isolation: str | None = None,
) -> dict[str, Any]:
    """Confirm and minimize the finding in ``folder`` (``finding.json`` and ``input``), once;
    the updated record is written back and returned. ``isolation`` overrides the one the
    finding was made with ("worker" when minimization candidates may crash the adapter)."""
    record = json.loads((folder / "finding.json").read_text())
    if record.get("triaged"):
        return dict(record)
    data = (folder / "input").read_bytes()
    replayer = Replayer.open(
        record["target"],
        record["adapter"],
        kind=record["kind"],
        isolation=isolation or record.get("isolation", "auto"),
        timeout_s=timeout_s,
        profile=profile,
    )
    try:
        again = replayer.check(data)
        record["confirmed"] = again is not None and again.signature == record["signature"]
        if again is not None and not record["confirmed"]:
            record["replayed_as"] = again.signature
        minimized = data
        if record["confirmed"] and minimize_inputs and len(data) > 1:
            minimized, attempts = minimize(replayer, data, record["signature"], budget_s=budget_s)
            record["minimize_attempts"] = attempts
    finally:
        replayer.close()
    (folder / "minimized").write_bytes(minimized)
    record["minimized_hex"] = minimized.hex()
    record["minimized_size"] = len(minimized)
    from harness.fuzzing.child import reproducers

    record["reproducer"] = reproducers(
        record["target"],
        record["adapter"],
        record.get("isolation", "auto"),
        str(folder / "minimized"),
    )
    record["triaged"] = True
    tmp = folder / "finding.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, folder / "finding.json")
    return dict(record)


def load_findings(directory: Path) -> list[dict[str, Any]]:
    """Every finding under ``directory`` (folders with a finding.json), oldest first."""
    found: list[dict[str, Any]] = []
    if not directory.is_dir():
        return found
    for folder in sorted(directory.iterdir()):
        path = folder / "finding.json"
        if path.is_file():
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            record["folder"] = str(folder)
            found.append(record)
    found.sort(key=lambda r: str(r.get("found", "")))
    return found
