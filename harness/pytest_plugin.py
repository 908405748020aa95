"""The pytest plugin: ``pytest --sspi-adapter NAME`` runs the scenario catalogue as pytest items.

Registered under the ``pytest11`` entry point, so it is loaded by every pytest run in an
environment where sspi-harness is installed: without ``--sspi-adapter`` it adds its option
group, its markers and its fixtures, and imports nothing else from the harness (DESIGN.md §5,
after pytest-randomly). The options are those of ``sspi-harness run`` (harness/options.py),
prefixed ``--sspi-``.

With ``--sspi-adapter``, every job ``sspi-harness run --adapter NAME`` would run (the case
alone, then ``@as-client`` / ``@as-server`` against the reference) becomes one item named by
its id, under a collector ``sspi-harness`` attached to the session, so no test file is needed.
So does each fuzz regression vector of ``vectors/regressions/`` (``regression[<id>]``, marked
``sspi_regression``), replayed as the command replays them when no case filter is given.
Outcomes map as follows:

- ``PASS`` passes; ``NON_STRICT`` (allowed only by the other profile) passes with a
  ``SspiNonStrictWarning``: the CLI does not count it as a failure either, and
  ``-W error::harness.pytest_plugin.SspiNonStrictWarning`` makes it one;
- ``UNSUPPORTED`` is a skip with the reason (a missing capability or backend);
- ``FAIL``, ``ERROR``, ``CRASH`` and ``TIMEOUT`` fail with the one-line message, then expected
  vs actual, the steps, the source and the reproducers;
- with ``--sspi-baseline``, a case the baseline expects to fail carries a strict ``xfail``
  with the baseline's reason: the expected outcome is XFAIL, another failing outcome fails,
  and a pass fails as ``XPASS(strict)`` (the baseline must be updated).
"""

from __future__ import annotations

import json
import shlex
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from _pytest._code.code import ReprFileLocation, TerminalRepr, TracebackStyle
from _pytest._io import TerminalWriter

from harness import options as opt

if TYPE_CHECKING:
    from harness.adapters.base import Adapter
    from harness.report.baseline import Baseline
    from harness.runner.engine import AdapterPool, Job
    from harness.scenarios.model import Case

COLLECTOR_NAME = "sspi-harness"
FAILING = ("FAIL", "ERROR", "CRASH", "TIMEOUT")


class SspiNonStrictWarning(UserWarning):
    """A case passed only under the profile not chosen (outcome NON_STRICT)."""


class ExpectedFailure(Exception):
    """Raised for an outcome the baseline expects; the strict xfail marker turns it into
    XFAIL (with ``--runxfail`` it is an ordinary failure)."""


class CaseFailed(Exception):
    """A failing outcome (FAIL, ERROR, CRASH, TIMEOUT) or a regression against the baseline."""


# -- options, markers -------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        opt.PYTEST_GROUP, "sspi-harness: run the SSPI scenario catalogue as pytest items"
    )
    for option in opt.PYTEST_OPTIONS:
        group.addoption(option.pytest_flag, **option.arguments(pytest=True))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sspi: a case of the sspi-harness scenario catalogue")
    config.addinivalue_line(
        "markers", "sspi_regression: the replay of a fuzz regression vector (vectors/regressions)"
    )
    for capability, meaning in opt.CAPABILITY_MARKERS.items():
        config.addinivalue_line(
            "markers", f"{opt.marker_name(capability)}: the case needs {meaning}"
        )
    name = config.getoption(opt.ADAPTER.pytest_dest)
    if name:
        config.stash[_STATE] = _State.from_config(config, name)
        config.add_cleanup(config.stash[_STATE].close)


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return None
    from harness import __version__

    return (
        f"sspi-harness {__version__}: adapter {state.name}, profile {state.profile}, "
        f"{len(state.jobs) + len(state.regressions)} cases"
        + (f", baseline {state.baseline_path}" if state.baseline else "")
    )


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselection, so that they apply to the cases
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        catalogue = Catalogue.from_parent(session, name=COLLECTOR_NAME, nodeid=COLLECTOR_NAME)
        # Through the collection hooks, so the terminal counts the items and an error in
        # collecting is reported as a collection error.
        session.ihook.pytest_collectstart(collector=catalogue)
        report = session.ihook.pytest_make_collect_report(collector=catalogue)
        session.ihook.pytest_collectreport(report=report)
        items.extend(node for node in report.result if isinstance(node, pytest.Item))


# -- the run's state ---------------------------------------------------------------------------


class _State:
    """The adapter, the selected jobs and the baseline of this pytest run."""

    def __init__(
        self,
        name: str,
        classes: dict[str, Any],
        jobs: list[Job],
        *,
        profile: str,
        baseline: Baseline | None,
        baseline_path: Path | None,
        isolate: bool,
        regressions: list[Path],
    ) -> None:
        self.name, self.classes, self.jobs = name, classes, jobs
        self.profile, self.baseline, self.baseline_path = profile, baseline, baseline_path
        self.isolate = isolate
        self.regressions = regressions
        self._pool: AdapterPool | None = None
        self._replayed: dict[str, dict[str, Any]] | None = None

    @classmethod
    def from_config(cls, config: pytest.Config, name: str) -> _State:
        """Resolve the adapter, read the baseline and plan the jobs; any problem is a one-line
        usage error, as from ``sspi-harness run``."""
        from harness.adapters.registry import UnknownAdapter, load_adapter
        from harness.fuzzing.regressions import vector_paths
        from harness.report.baseline import BaselineError, load_baseline
        from harness.runner.engine import REFERENCE, plan, plan_jobs
        from harness.runner.worker import isolated
        from harness.scenarios import CatalogueError, load_catalogue

        def option(o: opt.Option) -> Any:
            return config.getoption(o.pytest_dest)

        try:
            adapter_cls = load_adapter(name)
        except UnknownAdapter as exc:
            raise pytest.UsageError(f"--sspi-adapter: {exc}") from None
        isolate = bool(option(opt.ISOLATE)) or adapter_cls.isolate
        classes: dict[str, Any] = {
            name: isolated(name, timeout_s=option(opt.TIMEOUT)) if isolate else adapter_cls
        }
        baseline_path = option(opt.BASELINE)
        baseline = None
        if baseline_path is not None:
            try:
                baseline = load_baseline(baseline_path)
            except BaselineError as exc:
                raise pytest.UsageError(f"--sspi-baseline: {exc}") from None
        try:
            cases = load_catalogue()
        except CatalogueError as exc:
            raise pytest.UsageError(f"scenario catalogue: {exc}") from None
        peers = not option(opt.NO_PEERS)
        jobs = plan_jobs(classes, plan(cases), against_reference=peers, interop=False)
        try:
            jobs = opt.select(jobs, option(opt.CASE), base_id=opt.conformance_case_id)
        except opt.NoMatch as exc:
            raise pytest.UsageError(f"--sspi-case: {exc}") from None
        if any(j.peer == REFERENCE for j in jobs) and REFERENCE not in classes:
            classes[REFERENCE] = load_adapter(REFERENCE)
        return cls(
            name,
            classes,
            jobs,
            profile=option(opt.PROFILE),
            baseline=baseline,
            baseline_path=baseline_path,
            isolate=isolate,
            # As the command: the regression vectors are replayed when no case is picked out.
            regressions=[] if option(opt.CASE) else vector_paths(),
        )

    @property
    def pool(self) -> AdapterPool:
        """One instance per adapter for the whole session (a worker is reused between cases)."""
        if self._pool is None:
            from harness.runner.engine import AdapterPool

            self._pool = AdapterPool(self.classes)
        return self._pool

    def run(self, job: Job) -> dict[str, Any]:
        """The job's results.jsonl record, exactly as ``sspi-harness run`` writes it."""
        from harness.runner.engine import run_jobs

        sink = _OneRecord()
        run_jobs([job], self.pool, cast(Any, sink), profile=self.profile)
        return sink.record

    def replayed(self, vector: Path) -> dict[str, Any]:
        """The record of one regression vector. The command's own replay
        (``replay_regressions``) runs once, for every vector, at the first one asked for."""
        if self._replayed is None:
            from harness.fuzzing.regressions import replay_regressions

            self._replayed = {
                Path(str(r["source"]["ref"])).name: r for r in replay_regressions(self.name)
            }
        return self._replayed[vector.name]

    def pytest_command(self, job: Job) -> str:
        argv = ["pytest", "--sspi-adapter", self.name, "--sspi-profile", self.profile]
        argv += ["--sspi-case", job.id] + (["--sspi-isolate"] if self.isolate else [])
        return " ".join(shlex.quote(a) for a in argv)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


class _OneRecord:
    """The store ``run_jobs`` appends one record to."""

    def __init__(self) -> None:
        self.done: set[tuple[str, str]] = set()
        self.record: dict[str, Any] = {}

    def append(self, record: dict[str, Any]) -> None:
        self.record = record


_STATE = pytest.StashKey[_State]()


# -- collection -------------------------------------------------------------------------------


class Catalogue(pytest.Collector):
    """The scenario catalogue as planned for the adapter: one item per job."""

    def collect(self) -> list[pytest.Item]:
        from harness.adapters.base import Capability

        state = self.config.stash[_STATE]
        items: list[pytest.Item] = []
        for job in state.jobs:
            item = CaseItem.from_parent(self, name=job.id, job=job)
            item.add_marker(pytest.mark.sspi)
            needs = job.planned.case.needs
            if job.role is not None:
                needs |= Capability.CLIENT if job.role == "client" else Capability.SERVER
            for capability in Capability:
                if capability.name in opt.CAPABILITY_MARKERS and capability in needs:
                    item.add_marker(getattr(pytest.mark, opt.marker_name(capability.name)))
            _mark_expected_failure(item, state)
            items.append(item)
        for vector in state.regressions:
            regression = RegressionItem.from_parent(
                self, name=f"regression[{vector.stem}]", vector=vector
            )
            regression.add_marker(pytest.mark.sspi)
            regression.add_marker(pytest.mark.sspi_regression)
            _mark_expected_failure(regression, state)
            items.append(regression)
        return items


def _mark_expected_failure(item: pytest.Item, state: _State) -> None:
    """A strict xfail on an item the baseline expects to fail (its name is the case id)."""
    entry = state.baseline.expected(state.name, item.name) if state.baseline else None
    if entry is not None and entry.failing:
        item.add_marker(
            pytest.mark.xfail(
                reason=f"baseline {entry.describe()}: {entry.reason}",
                strict=True,
                raises=ExpectedFailure,
            )
        )


class _RecordItem(pytest.Item):
    """An item judged by its results.jsonl record, as the command judges it."""

    record: dict[str, Any]

    def run_record(self, state: _State) -> dict[str, Any]:
        raise NotImplementedError

    def pytest_command(self, state: _State) -> str | None:
        """The pytest line that runs this item alone, where there is one."""
        return None

    def runtest(self) -> None:
        state = self.config.stash[_STATE]
        self.record = record = self.run_record(state)
        outcome = record["outcome"]
        self.user_properties += [("outcome", outcome), ("reproducer", record["reproducer"])]
        verdict = "OK"
        if state.baseline is not None:
            from harness.report.baseline import gate

            gate([record], state.baseline)
            verdict = record["gate"]
        if verdict == "XFAIL":
            raise ExpectedFailure(self._describe(record, state))
        if verdict == "XPASS":
            return  # the strict xfail marker reports it as a failure
        if verdict == "REGRESSION" or outcome in FAILING:
            raise CaseFailed(self._describe(record, state))
        if outcome == "UNSUPPORTED":
            pytest.skip(record["message"] or "unsupported")
        if outcome == "NON_STRICT":
            # Located at the scenario's file: the plugin's own line would tell the reader nothing.
            warnings.warn_explicit(
                SspiNonStrictWarning(f"{self.name}: {record['message']}"),
                SspiNonStrictWarning,
                str(self.reportinfo()[0]),
                0,
            )

    def _describe(self, record: dict[str, Any], state: _State) -> str:
        """The one-line message, then what a reader needs to act on it."""
        first = f"{record['outcome']}: {record['message']}".rstrip(": ")
        if "baseline_outcome" in record and record.get("gate") == "REGRESSION":
            first += (
                f" (baseline expects {record['baseline_outcome']}: {record['baseline_reason']})"
            )
        lines = [first]
        if record.get("expected") or record.get("actual"):
            lines.append(f"  expected:   {_compact(record.get('expected'))}")
            lines.append(f"  actual:     {_compact(record.get('actual'))}")
        for step in record.get("steps", []):
            mark = "ok " if step.get("ok") else "BAD"
            want = step.get("expected") or "-"
            detail = step.get("detail") or ""
            detail = f"  ({detail})" if detail and detail != f"expected {want}" else ""
            lines.append(f"  {mark} {step['step']:18} {step['status']} (expected {want}){detail}")
        source = record.get("source") or {}
        if source.get("ref"):
            lines.append(f"  source:     {source['ref']}: {source.get('quote', '')}".rstrip(": "))
        lines.append(f"  reproducer: {record['reproducer']}")
        command = self.pytest_command(state)
        if command:
            lines.append(f"              {command}")
        return "\n".join(lines)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, CaseFailed | ExpectedFailure):
            return CaseRepr(str(excinfo.value), Path(self.reportinfo()[0]))
        return super().repr_failure(excinfo, style)


class CaseItem(_RecordItem):
    """One catalogue case (or its run against the reference) for the chosen adapter."""

    def __init__(self, *, job: Job, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.record = {}

    def run_record(self, state: _State) -> dict[str, Any]:
        return state.run(self.job)

    def pytest_command(self, state: _State) -> str | None:
        return state.pytest_command(self.job)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        from harness.scenarios.loader import DATA_DIR

        group = self.job.planned.case.scenario.group
        path = DATA_DIR / f"{group}.toml" if group else self.path
        return path, None, f"{self.job.id} ({self.job.planned.case.scenario.title})"


class RegressionItem(_RecordItem):
    """The replay of one fuzz regression vector against the chosen adapter; its reproducer
    is the record's ``sspi-harness fuzz --replay`` command."""

    def __init__(self, *, vector: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vector = vector
        self.record = {}

    def run_record(self, state: _State) -> dict[str, Any]:
        return state.replayed(self.vector)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.vector, None, f"{self.name} (fuzz regression vector)"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class CaseRepr(TerminalRepr):
    """A case's failure text, with no traceback into the plugin; ``reprcrash`` carries the
    one-line message for the short summary (``-ra``) and JUnit's ``message``."""

    def __init__(self, text: str, path: Path) -> None:
        self.text = text
        self.reprcrash = ReprFileLocation(str(path), 0, text.splitlines()[0])

    def toterminal(self, tw: TerminalWriter) -> None:
        for line in self.text.splitlines():
            tw.line(line, red=line.startswith(FAILING))


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sspi_profile(pytestconfig: pytest.Config) -> str:
    """The profile chosen with ``--sspi-profile`` (default ``documented``)."""
    return str(pytestconfig.getoption(opt.PROFILE.pytest_dest))


@pytest.fixture(scope="session")
def sspi_adapter(pytestconfig: pytest.Config) -> Adapter:
    """An instance of the ``--sspi-adapter`` adapter (in its worker with ``--sspi-isolate``),
    shared by the session and the catalogue items; the test is skipped without
    ``--sspi-adapter`` or when the backend is not available here."""
    state = pytestconfig.stash.get(_STATE, None)
    if state is None:
        pytest.skip("needs --sspi-adapter")
    instance = state.pool.get(state.name)
    if instance is None:
        pytest.skip(f"{state.name}: {state.classes[state.name].available().reason}")
    return instance


@pytest.fixture(scope="session")
def sspi_reference() -> Iterator[Adapter]:
    """The reference NTLM SSP (``harness.adapters.reference.ReferenceAdapter``), the oracle."""
    from harness.adapters.reference import ReferenceAdapter

    reference = ReferenceAdapter()
    yield reference
    reference.close()


@pytest.fixture(scope="session")
def sspi_case() -> Callable[[str], Case]:
    """A function from a catalogue case id (``sign-tamper-data[ntlmv2]``) to its ``Case``,
    to run with ``harness.runner.executor.execute(adapter, case, profile)``."""
    from harness.scenarios import load_catalogue

    cases = {case.id: case for case in load_catalogue()}

    def lookup(case_id: str) -> Case:
        try:
            return cases[case_id]
        except KeyError:
            raise LookupError(
                f"no catalogue case {case_id!r} (see 'sspi-harness run --list')"
            ) from None

    return lookup
