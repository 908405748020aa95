"""The run loop: jobs (case × adapter × peer), sanity first and last, results appended as
they finish.

Three kinds of job:
- ``conformance``: the adapter alone plays both roles (``case[variant]``);
- ``vs-reference``: the adapter plays one role and the reference the other, which also
  mirrors the adapter's calls to compare output bytes (``case[variant]@as-client`` /
  ``@as-server``);
- ``interop``: every adapter as client against every adapter as server on a few
  conversations (``case[variant]@client=A,server=B``).
"""

from __future__ import annotations

import gc
import os
import shlex
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.adapters.base import Adapter, Availability, Capability
from harness.adapters.native_abi import ENV_LIBRARY
from harness.runner.executor import CaseOutcome, execute
from harness.runner.store import ResultStore
from harness.runner.worker import WorkerAdapter
from harness.scenarios.model import Case

SANITY_ID = "sanity"
REFERENCE = "reference"
INTEROP_SCENARIOS = ("sanity", "sign-verify-server-to-client", "seal-unseal-client-to-server")


@dataclass(frozen=True)
class PlannedCase:
    """A case as it appears in the results: sanity runs twice under two ids."""

    id: str
    case: Case


@dataclass(frozen=True)
class Job:
    """One record's worth of work."""

    adapter: str
    planned: PlannedCase
    kind: str = "conformance"
    peer: str | None = None
    role: str | None = None  # the role the adapter plays against ``peer``

    @property
    def id(self) -> str:
        if self.kind == "vs-reference":
            return f"{self.planned.id}@as-{self.role}"
        if self.kind == "interop":  # the adapter is the client, the peer the server
            return f"{self.planned.id}@client={self.adapter},server={self.peer}"
        return self.planned.id


def plan(cases: list[Case]) -> list[PlannedCase]:
    """Sanity first and last, the rest in catalogue order."""
    sanity = [c for c in cases if c.scenario.id == SANITY_ID]
    rest = [PlannedCase(c.id, c) for c in cases if c.scenario.id != SANITY_ID]
    if not sanity:
        return rest
    return [PlannedCase("sanity[start]", sanity[0]), *rest, PlannedCase("sanity[end]", sanity[0])]


def plan_jobs(
    adapters: dict[str, type[Adapter]],
    planned: list[PlannedCase],
    *,
    against_reference: bool = True,
    interop: bool = True,
) -> list[Job]:
    """Every job of a run, adapter by adapter, then the interop matrix."""
    jobs: list[Job] = []
    for name, cls in adapters.items():
        jobs += [Job(name, p) for p in planned]
        if not against_reference or name == REFERENCE:
            continue
        for role, needed in (("client", Capability.CLIENT), ("server", Capability.SERVER)):
            if needed in cls.capabilities:
                jobs += [Job(name, p, "vs-reference", REFERENCE, role) for p in planned]
    if interop:
        conversations = [
            p for p in planned if p.case.scenario.id in INTEROP_SCENARIOS and p.id != "sanity[end]"
        ]
        clients = [n for n, c in adapters.items() if Capability.CLIENT in c.capabilities]
        servers = [n for n, c in adapters.items() if Capability.SERVER in c.capabilities]
        for client in clients:
            for server in servers:
                if client == server:
                    continue  # the conformance jobs already pair an adapter with itself
                jobs += [Job(client, p, "interop", server, "client") for p in conversations]
    return jobs


def _record(
    job: Job,
    profile: str,
    outcome: str,
    message: str,
    duration: float,
    *,
    isolated: bool,
    **extra: Any,
) -> dict[str, Any]:
    scenario = job.planned.case.scenario
    argv = ["--adapter", job.adapter]
    if job.kind == "interop" and job.peer and job.peer != job.adapter:
        argv += ["--adapter", job.peer]
    argv += ["--profile", profile, "--case", job.id] + (["--isolate"] if isolated else [])
    library = os.environ.get(ENV_LIBRARY)  # set by --native-lib (or by the user) for this run
    if library and "native" in (job.adapter, job.peer):
        argv += ["--native-lib", library]
    return {
        "case": job.id,
        "scenario": scenario.id,
        "variant": job.planned.case.variant,
        "adapter": job.adapter,
        "kind": job.kind,
        "peer": job.peer,
        "role": job.role,
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
        "reproducer": "sspi-harness run " + " ".join(shlex.quote(a) for a in argv),
        **extra,
    }


class AdapterPool:
    """One instance per adapter for the whole run (workers are reused between cases)."""

    def __init__(self, classes: dict[str, type[Adapter]]) -> None:
        self.classes = classes
        self._instances: dict[str, Adapter] = {}
        self._availability: dict[str, Availability] = {}

    def availability(self, name: str) -> Availability:
        """``available()`` of an adapter, asked once per run (it may probe a library)."""
        if name not in self._availability:
            self._availability[name] = self.classes[name].available()
        return self._availability[name]

    def get(self, name: str) -> Adapter | None:
        """The instance, or None when the backend is not available here."""
        if name not in self._instances:
            if not self.availability(name).ok:
                return None
            self._instances[name] = self.classes[name]()
        return self._instances[name]

    def close(self) -> None:
        """Close every adapter; one that fails to close must not hide the run's results."""
        for adapter in self._instances.values():
            try:
                adapter.close()
            except Exception:  # noqa: BLE001 - the results matter more than a clean shutdown
                pass


def _missing(job: Job, pool: AdapterPool) -> str:
    """Why a job cannot run, or "" when it can."""
    classes = pool.classes
    for name in filter(None, (job.adapter, job.peer)):
        availability = pool.availability(name)
        if not availability.ok:
            return f"{name}: {availability.reason}"
    needs = job.planned.case.needs
    key = (needs, classes[job.adapter], classes[job.peer] if job.peer is not None else None)
    reason = _MISSING.get(key)
    if reason is None:
        missing = needs & ~classes[job.adapter].capabilities
        if job.peer is not None:
            missing |= needs & ~classes[job.peer].capabilities
        reason = "missing capability " + ", ".join(m.name or "" for m in missing) if missing else ""
        _MISSING[key] = reason
    return reason


# (case needs, adapter class, peer class) -> reason: Flag arithmetic costs microseconds.
_MISSING: dict[tuple[Any, Any, Any], str] = {}


#: Whole cases queued ahead in a worker (``WorkerAdapter.submit_case``): the worker runs one
#: while the parent records another, so isolation costs little beyond the pickling.
PIPELINE_DEPTH = 8


def run_jobs(
    jobs: Iterable[Job],
    pool: AdapterPool,
    store: ResultStore,
    *,
    profile: str,
    on_case: Callable[[dict[str, Any]], None] = lambda record: None,
) -> None:
    """Run every job not yet in ``store``, appending a record as each finishes (in order).

    Jobs of an adapter isolated in a worker (but not interop jobs, whose two sides may live
    in two processes) run as whole cases inside the worker, a few in flight; when the worker
    dies or hangs, that case and those queued behind it run again call by call."""
    in_flight: deque[tuple[Job, WorkerAdapter, float]] = deque()
    # The catalogue, the modules and the records so far live as long as the run: keep them
    # out of the collector's full passes, and collect young objects less often (a case
    # makes hundreds and frees nearly all by reference counting); the collector's passes
    # otherwise cost a tenth of a fast run.
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 20_000), *thresholds[1:])

    def finish(job: Job, result: CaseOutcome | None, start: float, reason: str = "") -> None:
        isolated = getattr(pool.classes[job.adapter], "target", "") != ""
        extra: dict[str, Any]
        if result is None:
            outcome, message = "UNSUPPORTED", reason
            extra = {"expected": {}, "actual": {}, "steps": []}
        else:
            outcome, message = result.outcome, result.message
            extra = {
                "expected": result.expected,
                "actual": result.actual,
                "steps": [s.to_json() for s in result.steps],
                **({"handshake": result.handshake} if result.handshake else {}),
            }
        duration = time.perf_counter() - start if result is not None else 0.0
        record = _record(job, profile, outcome, message, duration, isolated=isolated, **extra)
        store.append(record)
        on_case(record)

    def in_process(job: Job, start: float) -> None:
        adapter, peer = pool.get(job.adapter), pool.get(job.peer) if job.peer else None
        assert adapter is not None
        finish(job, execute(adapter, job.planned.case, profile, peer=peer, role=job.role), start)

    def drain(keep: int) -> None:
        while len(in_flight) > keep:
            job, worker, start = in_flight.popleft()
            result = worker.collect_case()
            if result is not None:
                finish(job, result, start)
                continue
            again = [job, *(j for j, _, _ in in_flight)]
            in_flight.clear()
            for job in again:
                in_process(job, time.perf_counter())

    try:
        for job in jobs:
            if (job.adapter, job.id) in store.done:
                continue
            reason = _missing(job, pool)
            if reason:
                drain(0)
                finish(job, None, 0.0, reason)
                continue
            adapter = pool.get(job.adapter)
            if isinstance(adapter, WorkerAdapter) and job.kind != "interop":
                if in_flight and in_flight[0][1] is not adapter:
                    drain(0)
                adapter.submit_case(job.planned.case, profile, peer=job.peer, role=job.role)
                in_flight.append((job, adapter, time.perf_counter()))
                drain(PIPELINE_DEPTH - 1)
            else:
                drain(0)
                in_process(job, time.perf_counter())
        drain(0)
    finally:
        in_flight.clear()  # interrupted: queued cases are dropped, ``--resume`` runs them
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def run_adapter(
    name: str,
    adapter_cls: type[Adapter],
    planned: Iterable[PlannedCase],
    store: ResultStore,
    *,
    profile: str,
    on_case: Callable[[dict[str, Any]], None] = lambda record: None,
) -> None:
    """The conformance jobs of one adapter alone."""
    pool = AdapterPool({name: adapter_cls})
    try:
        run_jobs([Job(name, p) for p in planned], pool, store, profile=profile, on_case=on_case)
    finally:
        pool.close()


def sanity_notes(records: list[dict[str, Any]]) -> list[str]:
    """What the sanity cases say about each adapter's health over the run."""
    by_adapter: dict[str, dict[str, str]] = {}
    for record in records:
        if (
            record.get("scenario") == SANITY_ID
            and record.get("kind", "conformance") == "conformance"
        ):
            outcomes = by_adapter.setdefault(str(record.get("adapter")), {})
            outcomes[str(record.get("case"))] = str(record.get("outcome"))
    notes = []
    healthy = {"PASS", "NON_STRICT", "UNSUPPORTED"}
    for adapter, outcomes in by_adapter.items():
        start, end = outcomes.get("sanity[start]"), outcomes.get("sanity[end]")
        if start is not None and start not in healthy:
            notes.append(
                f"{adapter}: the opening sanity check ended {start}: the basic conversation "
                "does not work, so other results may share its cause"
            )
        elif end is not None and end not in healthy:
            notes.append(
                f"{adapter}: the closing sanity check ended {end} after the opening one passed: "
                "the adapter broke during the run"
            )
    return notes
