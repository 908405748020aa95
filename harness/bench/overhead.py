"""Per-case harness overhead: a conformance run against an in-process adapter, against a bare
loop that makes exactly the same adapter calls.

The calls are recorded once (untimed) by a subclass of the adapter that logs every SSPI call
with a copy of its arguments; the bare loop replays that log on a fresh instance: ``establish``
with the recorded options, then each message call with the recorded descriptor (a fresh copy
per pass, made before the clock starts) on the handle that the replayed ``establish`` returned
in place of the recorded one. With the reference's fixed randomness both runs compute the very
same bytes, so the bare loop does all the work of the real one, minus the harness.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.adapters.base import Adapter, CallResult, ContextOptions, ContextPair, Handle
from harness.sspi.buffers import SecBufferDesc

_MESSAGE_CALLS = ("make_signature", "verify_signature", "encrypt_message", "decrypt_message")


@dataclass
class CallLog:
    """Every adapter call of a run: (method, arguments), descriptors copied before the call,
    and the status each call returned (so a replay can be shown to do the same work)."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    statuses: list[int | None] = field(default_factory=list)


def recording(cls: type[Adapter], log: CallLog) -> type[Adapter]:
    """A subclass of ``cls`` that appends each call to ``log`` and then makes it."""

    def logged(method: str) -> Any:
        def call(self: Adapter, *args: Any) -> Any:
            log.calls.append((method, _copied(args)))
            result = getattr(super(sub, self), method)(*args)
            log.statuses.append(_status(result))
            if method == "establish" and isinstance(result, ContextPair):
                log.calls.append(("established", (result.client, result.server)))
            return result

        return call

    names = ("establish", "query_sizes", "delete_context", *_MESSAGE_CALLS)
    sub = type(f"Recording{cls.__name__}", (cls,), {n: logged(n) for n in names})
    return sub


def _status(result: Any) -> int | None:
    """The status of any adapter method's result (query_sizes returns a pair)."""
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, CallResult):
        return result.status
    return 0 if isinstance(result, ContextPair) else None


def replay(
    adapter: Adapter, calls: list[tuple[str, tuple[Any, ...]]], statuses: list[int | None]
) -> None:
    """Make the recorded calls on ``adapter``, appending each status to ``statuses``. Handles
    that the recording's ``establish`` returned are swapped for the ones this run's returns."""
    handles: dict[Handle, Handle] = {}
    pending: ContextPair | CallResult | None = None
    for method, args in calls:
        if method == "established":
            if isinstance(pending, ContextPair):
                handles[args[0]], handles[args[1]] = pending.client, pending.server
            continue
        if method == "establish":
            options: ContextOptions = args[0]
            pending = adapter.establish(options)
            statuses.append(_status(pending))
        else:
            handle = handles.get(args[0], args[0])
            statuses.append(_status(getattr(adapter, method)(handle, *args[1:])))


def _copied(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments with each descriptor copied (calls write into them)."""
    return tuple(a.copy() if isinstance(a, SecBufferDesc) else a for a in args)


def fresh_copies(calls: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, tuple[Any, ...]]]:
    return [(method, _copied(args)) for method, args in calls]


@dataclass
class OverheadResult:
    cases: int
    calls: int
    run_s: float  # best of the rounds
    bare_s: float

    @property
    def ratio(self) -> float:
        return self.run_s / self.bare_s if self.bare_s else float("inf")


def measure_overhead(
    adapter_cls: type[Adapter], name: str = "reference", rounds: int = 3
) -> OverheadResult:
    """Best-of-``rounds`` wall time of the conformance run and of the bare replay, interleaved
    so that noise on a shared machine hits both alike."""
    from harness.runner.engine import plan, run_adapter
    from harness.runner.store import ResultStore
    from harness.scenarios.loader import load_catalogue

    planned = plan(load_catalogue())
    log = CallLog()
    with tempfile.TemporaryDirectory() as tmp:
        run_adapter(
            name, recording(adapter_cls, log), planned, ResultStore(Path(tmp), resume=False),
            profile="documented",
        )
    run_times, bare_times = [], []
    for index in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            store = ResultStore(Path(tmp) / f"r{index}", resume=False)
            start = time.perf_counter()
            run_adapter(name, adapter_cls, planned, store, profile="documented")
            run_times.append(time.perf_counter() - start)
        copies, statuses = fresh_copies(log.calls), list[int | None]()
        adapter = adapter_cls()
        start = time.perf_counter()
        replay(adapter, copies, statuses)
        bare_times.append(time.perf_counter() - start)
        adapter.close()
        if statuses != log.statuses:
            raise AssertionError("the bare replay got other statuses than the run")
    return OverheadResult(len(planned), len(log.statuses), min(run_times), min(bare_times))
