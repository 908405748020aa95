"""The pytest plugin (harness/pytest_plugin.py): the catalogue as pytest items, baselines as
strict xfail, capability markers, fixtures, one-line usage errors, and a light import."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points

import pytest

from harness import options as opt
from harness.adapters.base import Capability
from harness.fuzzing.regressions import vector_paths
from harness.runner.engine import plan
from harness.scenarios import load_catalogue

pytest_plugins = ["pytester"]

MUTANT = "harness.adapters.mutants:AcceptsReplays"
HEAVY = ("harness.adapters", "harness.ntlm", "harness.runner", "harness.scenarios")


def _catalogue_size(capability: Capability | None = None) -> int:
    planned = plan(load_catalogue())
    return sum(1 for p in planned if capability is None or capability in p.case.needs)


def _regressions() -> int:
    """The fuzz regression vectors every whole run replays (items too, marked sspi)."""
    return len(vector_paths())


def _baseline(pytester: pytest.Pytester, adapters: dict[str, list[dict[str, str]]]) -> str:
    path = pytester.path / "sspi-baseline.json"
    path.write_text(json.dumps({"schema": "sspi-harness-baseline/1", "adapters": adapters}))
    return str(path)


def test_registered_under_pytest11() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("sspi_harness") == "harness.pytest_plugin"


def test_reference_runs_the_catalogue_as_passing_items(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--sspi-adapter", "reference")
    total = _catalogue_size() + _regressions()  # what `sspi-harness run` runs, no more
    assert total >= 1000 and _regressions() >= 1
    result.assert_outcomes(passed=total)
    result.stdout.fnmatch_lines(
        [
            f"sspi-harness *: adapter reference, profile documented, {total} cases",
            f"collected {total} items",
        ]
    )


def test_failing_cases_fail_with_expected_actual_and_reproducer(
    pytester: pytest.Pytester,
) -> None:
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--sspi-adapter",
        MUTANT,
        "--sspi-case",
        "verify-replay*",
        "--sspi-no-peers",
        f"--junitxml={junit}",
    )
    result.assert_outcomes(failed=8)
    result.stdout.fnmatch_lines(
        [
            "FAIL: step 2:verify/server: expected SEC_E_OUT_OF_SEQUENCE, got SEC_E_OK",
            '  expected:   {"status": "SEC_E_OUT_OF_SEQUENCE", "step": "2:verify/server"}',
            '  actual:     {"status": "SEC_E_OK", "step": "2:verify/server"}',
            f"  reproducer: sspi-harness run --adapter {MUTANT} --profile documented "
            "--case 'verify-replay?ntlmv2?'",
            f"              pytest --sspi-adapter {MUTANT} * --sspi-case 'verify-replay?ntlmv2?'",
        ]
    )
    assert "pytest_plugin.py" not in result.stdout.str()  # no traceback into the plugin
    cases = {tc.get("name"): tc for tc in ET.parse(junit).getroot().iter("testcase")}
    failure = cases["verify-replay[ntlmv2]"].find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "FAIL: step 2:verify/server: expected SEC_E_OUT_OF_SEQUENCE, got SEC_E_OK"
    )


def test_baseline_makes_known_failures_strict_xfail(pytester: pytest.Pytester) -> None:
    reason = "accepts a replayed message"
    baseline = _baseline(
        pytester, {MUTANT: [{"case": "verify-replay*", "outcome": "FAIL", "reason": reason}]}
    )
    args = ("--sspi-adapter", MUTANT, "--sspi-case", "verify-replay*", "--sspi-no-peers")
    result = pytester.runpytest(*args, "--sspi-baseline", baseline, "-rx")
    result.assert_outcomes(xfailed=8)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [f"XFAIL sspi-harness::verify-replay?ntlmv2? - baseline FAIL: {reason}"]
    )


def test_baseline_unexpected_pass_and_other_outcome_fail(pytester: pytest.Pytester) -> None:
    baseline = _baseline(
        pytester,
        {
            "reference": [
                {"case": "sign-tamper-data[ntlmv2]", "outcome": "FAIL", "reason": "was broken"}
            ],
            MUTANT: [{"case": "verify-replay[*]", "outcome": "CRASH", "reason": "it crashed"}],
        },
    )
    fixed = pytester.runpytest(
        "--sspi-adapter",
        "reference",
        "--sspi-case",
        "sign-tamper-data[*]",
        "--sspi-baseline",
        baseline,
    )
    fixed.assert_outcomes(failed=1, passed=2)
    fixed.stdout.fnmatch_lines(["[[]XPASS(strict)[]] baseline FAIL: was broken"])
    other = pytester.runpytest(
        "--sspi-adapter",
        MUTANT,
        "--sspi-case",
        "verify-replay[*]",
        "--sspi-no-peers",
        "--sspi-baseline",
        baseline,
    )
    other.assert_outcomes(failed=2)
    other.stdout.fnmatch_lines(["FAIL: step 2:* (baseline expects CRASH: it crashed)"])


def test_case_patterns_are_ids_or_globs_with_literal_brackets(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--collect-only",
        "-q",
        "--sspi-adapter",
        "reference",
        "--sspi-case",
        "sign-tamper-data[ntlmv2]",
        "--sspi-case",
        "verify-replay[*]",
    )
    ids = [line for line in result.stdout.lines if line.startswith("sspi-harness::")]
    assert ids == [
        "sspi-harness::sign-tamper-data[ntlmv2]",
        "sspi-harness::verify-replay[ntlmv2]",
        "sspi-harness::verify-replay[ntlmv1-ess]",
    ]


def test_capability_markers_select_cases(pytester: pytest.Pytester) -> None:
    total, datagram = _catalogue_size() + _regressions(), _catalogue_size(Capability.DATAGRAM)
    assert 0 < datagram < total
    only = pytester.runpytest(
        "--collect-only", "-q", "--sspi-adapter", "reference", "-m", "sspi_datagram"
    )
    only.stdout.fnmatch_lines(
        [f"{datagram}/{total} tests collected ({total - datagram} deselected)*"]
    )
    without = pytester.runpytest(
        "--collect-only", "-q", "--sspi-adapter", "reference", "-m", "not sspi_datagram"
    )
    without.stdout.fnmatch_lines([f"{total - datagram}/{total} tests collected*"])
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.sspi_datagram: the case needs datagram*"])


def test_capability_markers_cover_every_capability() -> None:
    assert set(opt.CAPABILITY_MARKERS) == {c.name for c in Capability}


def test_fixtures_for_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from harness.runner.executor import execute

        def test_case_against_reference(sspi_adapter, sspi_reference, sspi_case, sspi_profile):
            case = sspi_case("sign-tamper-data[ntlmv2]")
            assert execute(sspi_adapter, case, sspi_profile).outcome == "PASS"
            outcome = execute(sspi_adapter, case, sspi_profile, peer=sspi_reference, role="client")
            assert outcome.outcome == "PASS"

        def test_unknown_case(sspi_case):
            with pytest.raises(LookupError, match="no catalogue case"):
                sspi_case("no-such-case[ntlmv2]")
        """
    )
    with_adapter = pytester.runpytest("--sspi-adapter", "reference", "-m", "not sspi")
    with_adapter.assert_outcomes(passed=2, deselected=_catalogue_size() + _regressions())
    without = pytester.runpytest("-rs")
    without.assert_outcomes(passed=1, skipped=1)
    without.stdout.fnmatch_lines(["SKIPPED*needs --sspi-adapter"])


def test_isolated_adapter_runs_in_a_worker(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--sspi-adapter", "reference", "--sspi-isolate", "--sspi-case", "sign-tamper-data[*]"
    )
    result.assert_outcomes(passed=3)


def test_regression_vectors_are_items_as_in_the_command(pytester: pytest.Pytester) -> None:
    """Each vector of vectors/regressions is an item ``regression[<id>]`` with the record the
    command writes; a case filter leaves them out, as it does for the command."""
    names = sorted(f"sspi-harness::regression[{p.stem}]" for p in vector_paths())
    listed = pytester.runpytest("--collect-only", "-q", "--sspi-adapter", "pyspnego",
                                "-m", "sspi_regression")
    assert sorted(line for line in listed.stdout.lines if "::regression[" in line) == names
    filtered = pytester.runpytest("--collect-only", "-q", "--sspi-adapter", "pyspnego",
                                  "--sspi-case", "sanity*")
    assert "regression[" not in filtered.stdout.str()

    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("--sspi-adapter", "pyspnego", "-m", "sspi_regression",
                                f"--junitxml={junit}")
    cases = {tc.get("name"): tc for tc in ET.parse(junit).getroot().iter("testcase")}
    outcomes = {name: {p.get("name"): p.get("value") for p in tc.iter("property")}["outcome"]
                for name, tc in cases.items()}
    failing = [n for n, o in outcomes.items() if o in ("FAIL", "ERROR", "CRASH", "TIMEOUT")]
    skipped = [n for n, o in outcomes.items() if o == "UNSUPPORTED"]
    result.assert_outcomes(failed=len(failing), skipped=len(skipped),
                           passed=len(cases) - len(failing) - len(skipped))
    assert failing  # pyspnego still has open fuzz findings (see vectors/regressions)
    result.stdout.fnmatch_lines(["  reproducer: sspi-harness fuzz --adapter pyspnego --replay "
                                 "vectors/regressions/*.json"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sspi-adapter", "nope"], "ERROR: --sspi-adapter: unknown adapter 'nope' (known: *"),
        (["--sspi-adapter", "reference", "--sspi-case", "zzz"], "ERROR: --sspi-case: no case *"),
        (["--sspi-adapter", "reference", "--sspi-baseline", "missing.json"], "ERROR: *missing*"),
    ],
)
def test_usage_errors_are_one_line(
    pytester: pytest.Pytester, argv: list[str], message: str
) -> None:
    result = pytester.runpytest(*argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.lines if line.strip()]
    assert len(lines) == 1, lines
    result.stderr.fnmatch_lines([message])


def test_without_adapter_nothing_is_collected_or_imported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import sys

        def test_plugin_is_light():
            assert "harness.pytest_plugin" in sys.modules
            assert not [m for m in sys.modules if m.startswith({HEAVY!r})]
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["collected 1 item"])
    helped = pytester.runpytest_subprocess("--help")
    helped.stdout.fnmatch_lines(["sspi-harness: run the SSPI scenario catalogue as pytest items:"])
    for option in opt.PYTEST_OPTIONS:
        assert option.pytest_flag in helped.stdout.str()


def test_cli_and_plugin_share_option_definitions() -> None:
    from harness.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    run = sub.choices["run"]  # type: ignore[index]
    flags = {s for action in run._actions for s in action.option_strings}
    assert {o.cli_flag for o in opt.PYTEST_OPTIONS} <= flags
    profile = next(a for a in run._actions if a.dest == "profile")
    assert tuple(profile.choices or ()) == opt.PROFILES
