"""Isolation: the reference catalogue through a worker subprocess against in-process, in
cases per second. Rounds alternate between the two so that noise hits both alike."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class IsolationResult:
    cases: int
    in_process_per_s: float
    worker_per_s: float
    startup_s: float  # starting the worker, once per run

    @property
    def ratio(self) -> float:
        return self.worker_per_s / self.in_process_per_s if self.in_process_per_s else 0.0


def measure_isolation(rounds: int = 3) -> IsolationResult:
    """Best of ``rounds`` for each. The worker is started before the clock: its start-up
    (interpreter, imports, the adapter's library; paid once per run) is measured apart."""
    from harness.adapters.reference import ReferenceAdapter
    from harness.runner.engine import AdapterPool, Job, plan, run_jobs
    from harness.runner.store import ResultStore
    from harness.runner.worker import WorkerAdapter, isolated
    from harness.scenarios.loader import load_catalogue

    planned = plan(load_catalogue())
    jobs = [Job("reference", p) for p in planned]
    best = {"in-process": 0.0, "worker": 0.0}
    startup = float("inf")
    for _ in range(rounds):
        for label, cls in (("in-process", ReferenceAdapter), ("worker", isolated("reference"))):
            pool = AdapterPool({"reference": cls})
            adapter = pool.get("reference")
            if isinstance(adapter, WorkerAdapter):
                began = time.perf_counter()
                adapter.start()
                startup = min(startup, time.perf_counter() - began)
            with tempfile.TemporaryDirectory() as tmp:
                store = ResultStore(Path(tmp), resume=False)
                start = time.perf_counter()
                run_jobs(jobs, pool, store, profile="documented")
                rate = len(planned) / (time.perf_counter() - start)
                store.close()
            pool.close()
            if any(r["outcome"] != "PASS" for r in store.records):
                raise AssertionError(f"{label}: the reference catalogue did not pass")
            best[label] = max(best[label], rate)
    return IsolationResult(len(planned), best["in-process"], best["worker"], startup)
