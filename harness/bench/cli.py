"""``sspi-harness bench``: every measure, its figure, its target, and whether it is met.

    sspi-harness bench [--only NAME ...] [--fuzz-seconds S] [--fuzz-adapter NAME ...]
                       [--json FILE] [--strict]

Exit 0 when it ran (``--strict``: 1 when a target is missed), 2 on bad options.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MEASURES = ("overhead", "catalogue", "isolation", "throughput", "report", "fuzz")


@dataclass
class Row:
    """One line of the table: ``figure`` compared with ``target`` by ``op`` (<= or >=)."""

    measure: str
    figure: float
    unit: str
    op: str
    target: float
    detail: str = ""

    @property
    def met(self) -> bool:
        return self.figure <= self.target if self.op == "<=" else self.figure >= self.target


def _overhead() -> list[Row]:
    from harness.adapters.reference import ReferenceAdapter
    from harness.bench.overhead import measure_overhead
    from harness.fuzzing.targets import FIXED_RANDOMNESS

    class FixedReference(ReferenceAdapter):
        """The reference with fixed challenges and keys, so that a replay is exact."""

        def __init__(self) -> None:
            super().__init__(randomness=FIXED_RANDOMNESS)

    r = measure_overhead(FixedReference)
    detail = (f"{r.cases} cases, {r.calls} adapter calls: run {r.run_s:.3f} s, "
              f"bare replay {r.bare_s:.3f} s")
    return [Row("harness overhead: run / bare loop (reference)", r.ratio, "x", "<=", 1.10, detail)]


def _catalogue() -> list[Row]:
    from harness.bench.catalogue import measure_catalogue

    seconds = measure_catalogue()
    return [Row("NTLM catalogue vs reference, whole command", seconds, "s", "<=", 5.0,
                "sspi-harness run --adapter reference --quiet, best of 3")]


def _isolation() -> list[Row]:
    from harness.bench.isolation import measure_isolation

    r = measure_isolation()
    detail = (f"{r.cases} cases; in-process {r.in_process_per_s:.0f} cases/s; "
              f"worker / in-process {r.ratio:.2f}; worker start {r.startup_s:.2f} s once")
    return [Row("isolation: cases/s through a worker", r.worker_per_s, "cases/s", ">=", 2000,
                detail)]


def _throughput() -> list[Row]:
    from harness.bench.throughput import measure_throughput

    return [
        Row(f"reference / pyspnego {t.op} {_size(t.size)}", t.ratio, "x", ">=", 1.0,
            f"{t.reference_per_s:.0f} vs {t.pyspnego_per_s:.0f} calls/s")
        for t in measure_throughput()
    ]


def _report() -> list[Row]:
    from harness.bench.report_gen import measure_report

    r = measure_report()
    rows = [Row("report for 100,000 results", r.write_s, "s", "<=", 10.0,
                f"{r.size_mb:.1f} MB index.html, JUnit, summary and pcaps")]
    if r.open_s is not None:
        rows.append(Row("report opens in Chromium (100,000 results)", r.open_s, "s", "<=", 3.0,
                        "navigation until the page is ready"))
    return rows


def _fuzz(seconds: float, adapters: Sequence[str]) -> Callable[[], list[Row]]:
    def measure() -> list[Row]:
        import tempfile

        from harness.fuzzing import TARGET_NAMES
        from harness.fuzzing.bench import measure as fuzz_measure

        with tempfile.TemporaryDirectory() as tmp:
            results = fuzz_measure(list(TARGET_NAMES), list(adapters), seconds, Path(tmp))
        return [
            Row(f"fuzz {r['target']} x {r['adapter']}: exec/s / bare atheris loop",
                r["exec_per_s"] / r["bare_exec_per_s"] if r["bare_exec_per_s"] else 0.0,
                "x", ">=", 0.9,
                f"{r['exec_per_s']:.0f} vs {r['bare_exec_per_s']:.0f} exec/s, "
                f"{r['calls_per_s']:.0f} adapter calls/s")
            for r in results
        ]

    return measure


def _size(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def _format(rows: Sequence[Row]) -> str:
    width = max(len(r.measure) for r in rows)
    lines = []
    for r in rows:
        figure = f"{r.figure:.2f}" if r.figure < 100 else f"{r.figure:.0f}"
        mark = "met" if r.met else "MISSED"
        lines.append(f"{r.measure:<{width}}  {figure:>8} {r.unit:<7} target {r.op} "
                     f"{r.target:g}  {mark:<6}  {r.detail}")
    return "\n".join(lines)


def run_bench(args: Any) -> int:
    selected = args.only or list(MEASURES)
    measures: dict[str, Callable[[], list[Row]]] = {
        "overhead": _overhead,
        "catalogue": _catalogue,
        "isolation": _isolation,
        "throughput": _throughput,
        "report": _report,
        "fuzz": _fuzz(args.fuzz_seconds, args.fuzz_adapter or ["reference"]),
    }
    print(f"machine: {platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
          file=sys.stderr)
    rows: list[Row] = []
    for name in selected:
        started = time.perf_counter()
        print(f"measuring {name}...", file=sys.stderr, flush=True)
        found = measures[name]()
        rows += found
        print(_format(found), flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    missed = [r for r in rows if not r.met]
    print(f"{len(rows) - len(missed)} of {len(rows)} targets met"
          + (f"; {len(missed)} MISSED (marked above; docs/performance.md says why)"
             if missed else ""))
    if args.json:
        payload = {"machine": _machine(), "rows": [{**asdict(r), "met": r.met} for r in rows]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 1 if args.strict and missed else 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _machine() -> dict[str, Any]:
    return {"machine": platform.machine(), "cores": _cores(),
            "python": platform.python_version(), "platform": platform.platform()}
