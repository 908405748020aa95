"""Shared by the adapter test files: the catalogue of one adapter, gated on its reviewed
baseline in tests/baselines/<adapter>.json, and the check that no baseline entry is stale."""

from __future__ import annotations

from pathlib import Path

from harness.adapters.base import Adapter
from harness.cli import main
from harness.report.baseline import load_baseline
from harness.runner.engine import plan, plan_jobs
from harness.scenarios import load_catalogue

REPO_ROOT = Path(__file__).resolve().parents[1]
BASELINES = REPO_ROOT / "tests" / "baselines"
# Job-id patterns of the three kinds of catalogue job: alone, and against the reference.
JOBS = {"alone": "*]", "as-client": "*]@as-client", "as-server": "*]@as-server"}


def baseline_path(adapter: str) -> Path:
    return BASELINES / f"{adapter}.json"


def gate_exit_code(adapter: str, jobs: str, out: Path, *extra: str) -> int:
    """``sspi-harness run`` of one kind of job for ``adapter``, gated on its baseline."""
    argv = ["run", "--adapter", adapter, "--case", JOBS[jobs], "--out", str(out), *extra]
    return main([*argv, "--quiet", "--baseline", str(baseline_path(adapter))])


def stale_entries(adapter: str, cls: type[Adapter]) -> list[str]:
    """Baseline entries that match no job of the catalogue and no regression vector."""
    jobs = plan_jobs({adapter: cls}, plan(load_catalogue()), interop=False)
    ids = [job.id for job in jobs]
    # fuzz findings kept as regression vectors are replayed by every run, too
    ids += [f"regression[{p.stem}]" for p in (REPO_ROOT / "vectors" / "regressions").glob("*.json")]
    entries = load_baseline(baseline_path(adapter)).adapters[adapter]
    assert entries, f"the {adapter} baseline is empty"
    return [e.case for e in entries if not any(e.matches(i) for i in ids)]
