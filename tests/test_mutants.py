"""Mutation testing: every shipped mutant is killed by the catalogue, the reference is not."""

from __future__ import annotations

import re

import pytest

from harness.adapters.base import Adapter
from harness.adapters.reference import ReferenceAdapter
from harness.adapters.registry import load_adapter
from harness.mutation import MUTANTS, MutationReport, run_mutant, run_mutants
from harness.runner.executor import execute
from harness.scenarios import load_catalogue


@pytest.fixture(scope="module")
def report() -> MutationReport:
    return run_mutants()


def test_catalogue_of_mutants() -> None:
    from harness.adapters import mutants

    assert len(MUTANTS) >= 20
    for name in (
        "SegfaultsOnShortToken",
        "HangsOnEmptyMessage",
        "AcceptsReplays",
        "ReleasesPlaintextOnFailure",
    ):
        assert issubclass(getattr(mutants, name), ReferenceAdapter)  # kept importable
    for name, path in MUTANTS.items():
        cls = load_adapter(path)
        assert cls.name == name and re.fullmatch(r"mutant(-[a-z0-9]+)+", name)
        assert issubclass(cls, ReferenceAdapter)
        doc = cls.__doc__ or ""
        assert doc.startswith("Bug: ") and "Breaks " in doc, name  # the bug and the rule


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_killed(name: str, report: MutationReport) -> None:
    result = next(r for r in report.results if r.name == name)
    first = result.killed_by
    assert first is not None, f"{name} survived {result.jobs} cases: {result.bug}"
    print(f"{name}: killed by {first.case} ({first.outcome}: {first.message})")
    assert first.outcome in ("FAIL", "ERROR", "CRASH", "TIMEOUT")


def test_score_is_100_percent(report: MutationReport) -> None:
    assert report.score == 1.0 and report.ok and not report.survivors
    lines = report.lines()
    assert len(lines) == len(MUTANTS) + 1
    assert all(" killed " in line for line in lines[:-1])
    assert lines[-1].startswith(f"mutation score: {len(MUTANTS)}/{len(MUTANTS)} killed (100.0%)")


def test_reference_is_not_killed_by_the_same_procedure(report: MutationReport) -> None:
    result = run_mutant(ReferenceAdapter, first_only=False)
    assert not result.killed, [(k.case, k.message) for k in result.kills[:5]]
    assert result.jobs == report.yardstick > 0


def test_killing_case_replays(report: MutationReport) -> None:
    """The case named as the killer fails again when run alone against the mutant."""
    cases = {c.id: c for c in load_catalogue()}
    for result in report.results:
        first = result.killed_by
        if first is None or result.isolated:
            continue
        case_id, _, role = first.case.partition("@as-")
        case = cases[re.sub(r"^sanity\[(start|end)\]$", "sanity[ntlmv2]", case_id)]
        mutant: Adapter = load_adapter(result.target)()
        peer = ReferenceAdapter() if role else None
        again = execute(mutant, case, peer=peer, role=role or None)
        assert again.outcome == first.outcome, (result.name, first.case, again.message)
        assert result.reproducer.startswith("sspi-harness run --adapter harness.adapters.mutants:")


def test_survivor_is_reported() -> None:
    """A mutant that no case can see survives, and the report says so."""
    only = [c for c in load_catalogue() if c.scenario.id == "sign-verify-client-to-server"]
    report = run_mutants(names=["mutant-sizes-zero-signature"], cases=only)
    assert report.score == 0.0 and [r.name for r in report.survivors] == [
        "mutant-sizes-zero-signature"
    ]
    assert (
        "SURVIVED" in report.lines()[0]
        and "survivors: mutant-sizes-zero-signature" in (report.lines()[-1])
    )


def test_unknown_mutant_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mutant"):
        run_mutants(names=["mutant-does-not-exist"])
