"""Mutation testing of the catalogue: does it catch the bugs it claims to catch?

Each mutant (``harness.adapters.mutants``) is the reference SSP with one realistic bug. The
whole catalogue runs against it, alone (``conformance``) and against the reference as peer
in both roles (``vs-reference``: some bugs, such as a MAC over the ciphertext, are
self-consistent and show only against the oracle's mirror). A mutant is *killed* when some
job ends FAIL, ERROR, CRASH or TIMEOUT where the reference itself PASSes the same job; it
*survives* otherwise, which points at a gap in the catalogue. Mutants that crash or hang the
process (``isolate = True``) run in a worker subprocess.

``sspi-harness mutants`` prints ``run_mutants().lines()``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.adapters.base import Adapter
from harness.adapters.mutants import ALL
from harness.adapters.reference import ReferenceAdapter
from harness.adapters.registry import load_adapter
from harness.runner.engine import Job, PlannedCase, plan, plan_jobs
from harness.runner.executor import execute
from harness.scenarios import Case, load_catalogue

# name -> "package.module:Class" of every shipped mutant (the names are the classes' own).
MUTANTS: dict[str, str] = {cls.name: f"harness.adapters.mutants:{cls.__name__}" for cls in ALL}

KILLING_OUTCOMES = frozenset({"FAIL", "ERROR", "CRASH", "TIMEOUT"})
DEFAULT_TIMEOUT_S = 2.0  # per call, for isolated mutants (a hang costs this much per case)


@dataclass(frozen=True)
class Kill:
    """A job that told the mutant from the reference."""

    case: str  # the job id, as in results.jsonl: "id[variant]" or "id[variant]@as-client"
    outcome: str
    message: str


@dataclass
class MutantResult:
    name: str
    target: str  # registry name or package.module:Class
    bug: str  # the first line of the class docstring
    isolated: bool
    jobs: int = 0  # jobs run (all of them for a survivor; up to the first kill otherwise)
    kills: list[Kill] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return bool(self.kills)

    @property
    def killed_by(self) -> Kill | None:
        """The first killing job, in catalogue order (conformance jobs first)."""
        return self.kills[0] if self.kills else None

    @property
    def reproducer(self) -> str:
        """The command that replays the first killing job ('' for a survivor)."""
        if self.killed_by is None:
            return ""
        argv = ["sspi-harness", "run", "--adapter", self.target, "--case", self.killed_by.case]
        return " ".join(shlex.quote(a) for a in argv + (["--isolate"] if self.isolated else []))

    def to_json(self) -> dict[str, Any]:
        first = self.killed_by
        return {
            "mutant": self.name,
            "target": self.target,
            "bug": self.bug,
            "killed": self.killed,
            "killed_by": first.case if first else None,
            "outcome": first.outcome if first else None,
            "message": first.message if first else None,
            "kills": len(self.kills),
            "jobs": self.jobs,
            "reproducer": self.reproducer,
        }


@dataclass
class MutationReport:
    profile: str
    yardstick: int  # jobs the reference passes: the cases a mutant can be killed by
    results: list[MutantResult]

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def killed(self) -> list[MutantResult]:
        return [r for r in self.results if r.killed]

    @property
    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if not r.killed]

    @property
    def score(self) -> float:
        """Killed mutants over all mutants, in [0, 1] (1.0 when there are none)."""
        return len(self.killed) / self.total if self.total else 1.0

    @property
    def ok(self) -> bool:
        """Every mutant killed."""
        return not self.survivors

    def lines(self) -> list[str]:
        """One line per mutant (killed, by which case; or SURVIVED, and its bug), then the
        score."""
        width = max((len(r.name) for r in self.results), default=0)
        out = []
        for r in self.results:
            first = r.killed_by
            if first is not None:
                message = _clip(first.message, 110)
                out.append(
                    f"{r.name:{width}}  killed    by {first.case} ({first.outcome}: {message})"
                )
            else:
                out.append(f"{r.name:{width}}  SURVIVED  {r.jobs} cases; bug: {_clip(r.bug, 110)}")
        percent = 100.0 * self.score
        out.append(
            f"mutation score: {len(self.killed)}/{self.total} killed ({percent:.1f}%), "
            f"{self.yardstick} cases per mutant, profile {self.profile}"
        )
        if self.survivors:
            out.append("survivors: " + ", ".join(r.name for r in self.survivors))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "cases": self.yardstick,
            "score": self.score,
            "killed": len(self.killed),
            "total": self.total,
            "mutants": [r.to_json() for r in self.results],
        }


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bug(cls: type[Adapter]) -> str:
    doc = (cls.__doc__ or "").strip()
    return " ".join(doc.split("\n\n", 1)[0].split()) if doc else cls.__name__


def _jobs(cls: type[Adapter], planned: list[PlannedCase], against_reference: bool) -> list[Job]:
    """The conformance jobs, then the vs-reference jobs as client and as server, minus those
    that need a capability the adapter lacks (they could only be UNSUPPORTED)."""
    name = cls.name if cls.name != "reference" else "reference-under-test"
    jobs = plan_jobs({name: cls}, planned, against_reference=against_reference, interop=False)
    return [j for j in jobs if not j.planned.case.needs & ~cls.capabilities]


class Yardstick:
    """The reference's outcome for every job, computed once and shared by all mutants."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self._outcomes: dict[str, str] = {}
        self._alone = ReferenceAdapter()
        self._peers = (ReferenceAdapter(), ReferenceAdapter())

    def passes(self, job: Job) -> bool:
        if job.id not in self._outcomes:
            if job.kind == "vs-reference":
                adapter, peer = self._peers
                result = execute(adapter, job.planned.case, self.profile, peer=peer, role=job.role)
            else:
                result = execute(self._alone, job.planned.case, self.profile)
            self._outcomes[job.id] = result.outcome
        return self._outcomes[job.id] == "PASS"

    def count(self, jobs: Iterable[Job]) -> int:
        return sum(1 for job in jobs if self.passes(job))


def _instantiate(cls: type[Adapter], target: str, timeout_s: float) -> tuple[Adapter, bool]:
    if cls.isolate:
        from harness.runner.worker import isolated

        return isolated(target, timeout_s=timeout_s)(), True
    return cls(), False


def run_mutant(
    target: str | type[Adapter],
    *,
    profile: str = "documented",
    against_reference: bool = True,
    cases: Sequence[Case] | None = None,
    first_only: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    yardstick: Yardstick | None = None,
) -> MutantResult:
    """Run the catalogue against one adapter (a mutant name, a ``package.module:Class`` path
    or a class) and record the jobs that kill it; stop at the first unless ``first_only`` is
    False. The same procedure applied to the reference must find nothing."""
    if isinstance(target, str):
        path = MUTANTS.get(target, target)
        cls = load_adapter(path)
    else:
        cls = target
        path = f"{cls.__module__}:{cls.__qualname__}"
    yardstick = yardstick or Yardstick(profile)
    planned = plan(list(cases) if cases is not None else load_catalogue())
    adapter, isolated = _instantiate(cls, path, timeout_s)
    result = MutantResult(cls.name or cls.__name__, path, _bug(cls), isolated)
    peer = ReferenceAdapter()
    try:
        for job in _jobs(cls, planned, against_reference):
            if not yardstick.passes(job):
                continue  # nothing to learn where the reference itself does not pass
            result.jobs += 1
            outcome = execute(
                adapter,
                job.planned.case,
                profile,
                peer=peer if job.kind == "vs-reference" else None,
                role=job.role,
            )
            if outcome.outcome in KILLING_OUTCOMES:
                result.kills.append(Kill(job.id, outcome.outcome, outcome.message))
                if first_only:
                    break
    finally:
        adapter.close()
    return result


def run_mutants(
    *,
    profile: str = "documented",
    names: Sequence[str] | None = None,
    against_reference: bool = True,
    cases: Sequence[Case] | None = None,
    first_only: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> MutationReport:
    """Run the catalogue against every shipped mutant (or those in ``names``) and report
    which are killed, by which case, and the score."""
    chosen = list(MUTANTS) if names is None else list(names)
    unknown = [n for n in chosen if n not in MUTANTS]
    if unknown:
        raise ValueError(f"unknown mutant(s) {', '.join(unknown)} (known: {', '.join(MUTANTS)})")
    cases = list(cases) if cases is not None else load_catalogue()
    yardstick = Yardstick(profile)
    results = [
        run_mutant(
            name,
            profile=profile,
            against_reference=against_reference,
            cases=cases,
            first_only=first_only,
            timeout_s=timeout_s,
            yardstick=yardstick,
        )
        for name in chosen
    ]
    measured = yardstick.count(_jobs(ReferenceAdapter, plan(cases), against_reference))
    return MutationReport(profile, measured, results)
