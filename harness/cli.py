"""The ``sspi-harness`` command.

Exit codes: 0 nothing failed, 1 something failed, 2 usage or input error (one line on stderr,
never a traceback), 130 interrupted (what finished is kept and reported).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from harness import __version__
from harness import options as opt

PROG = "sspi-harness"


class UsageError(Exception):
    """Bad input from the user; printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description="Conformance and fuzz testing for SSPI message functions."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the conformance catalogue against adapters")
    run.add_argument(opt.ADAPTER.cli_flag, **opt.ADAPTER.arguments(action="append"))
    run.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="output folder (default: reports)",
    )
    # Options the pytest plugin shares (as --sspi-NAME) are defined in harness/options.py.
    run.add_argument(opt.PROFILE.cli_flag, **opt.PROFILE.arguments())
    run.add_argument(opt.CASE.cli_flag, **opt.CASE.arguments())
    run.add_argument("--list", action="store_true", help="print the cases and exit")
    run.add_argument(
        "--resume",
        action="store_true",
        help="keep DIR/results.jsonl and run only the cases not in it",
    )
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument(opt.ISOLATE.cli_flag, **opt.ISOLATE.arguments())
    run.add_argument(opt.TIMEOUT.cli_flag, **opt.TIMEOUT.arguments())
    run.add_argument(opt.NO_PEERS.cli_flag, **opt.NO_PEERS.arguments())
    run.add_argument(opt.NATIVE_LIB.cli_flag, **opt.NATIVE_LIB.arguments())
    run.add_argument(
        "--properties",
        type=opt.positive_int,
        metavar="N",
        help="after the catalogue, run the hypothesis state machine with N examples per adapter "
        "(in a subprocess for isolated adapters)",
    )
    run.add_argument(opt.BASELINE.cli_flag, **opt.BASELINE.arguments())
    run.add_argument(
        "--campaign",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a fuzz campaign folder to show in the report (repeatable; DIR/fuzz/*/ of --out "
        "are found anyway)",
    )

    adapters = sub.add_parser("adapters", help="list adapters, availability and capabilities")
    adapters.add_argument(opt.NATIVE_LIB.cli_flag, **opt.NATIVE_LIB.arguments())

    mutants = sub.add_parser(
        "mutants", help="run the catalogue against deliberately broken adapters: mutation score"
    )
    mutants.add_argument("names", nargs="*", metavar="NAME", help="mutants to run (default all)")
    mutants.add_argument("--profile", choices=opt.PROFILES, default=opt.DEFAULT_PROFILE)
    mutants.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")

    bench = sub.add_parser(
        "bench", help="measure the harness against its performance targets (ratios, one run)"
    )
    bench.add_argument(
        "--only", action="append", choices=_bench_measures(), metavar="NAME",
        help=f"one measure (repeatable): {', '.join(_bench_measures())}",
    )
    bench.add_argument("--fuzz-seconds", type=opt.positive_float, default=5.0, metavar="S",
                       help="seconds per fuzz target and per bare loop (default 5)")
    bench.add_argument("--fuzz-adapter", action="append", metavar="NAME",
                       help="adapter for the fuzz measure (repeatable; default reference)")
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON")
    bench.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    bench.add_argument(opt.NATIVE_LIB.cli_flag, **opt.NATIVE_LIB.arguments())
    fuzz = sub.add_parser(
        "fuzz",
        help="coverage-guided fuzz campaign (atheris); 'sspi-harness fuzz --help' for options",
        add_help=False,
    )
    fuzz.add_argument("fuzz_args", nargs=argparse.REMAINDER)

    baseline = sub.add_parser("baseline", help="baselines of expected outcomes, for CI gating")
    bsub = baseline.add_subparsers(dest="baseline_command", required=True, parser_class=_Parser)
    update = bsub.add_parser("update", help="write the outcomes of a run as the new baseline")
    update.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="the run's output folder (default: reports)",
    )
    update.add_argument(
        "--out",
        type=Path,
        default=Path("sspi-baseline.json"),
        metavar="FILE",
        help="baseline file to write (reasons of unchanged entries are kept)",
    )

    vectors = sub.add_parser(
        "vectors", help="golden vectors: lint files, replay against an adapter"
    )
    vsub = vectors.add_subparsers(dest="vectors_command", required=True, parser_class=_Parser)
    lint = vsub.add_parser("lint", help="validate vector files (schema, ids, counts, flags)")
    lint.add_argument("files", nargs="*", type=Path)
    check = vsub.add_parser("check", help="replay vectors against an adapter")
    check.add_argument("--adapter", default="reference", metavar="NAME")
    check.add_argument(opt.NATIVE_LIB.cli_flag, **opt.NATIVE_LIB.arguments())
    check.add_argument("files", nargs="*", type=Path)
    return parser


# -- adapters ---------------------------------------------------------------------------------


def use_native_lib(path: str | None) -> None:
    """``--native-lib``: checked before any adapter loads, then set for this process and the
    worker subprocesses (``harness.adapters.native_abi.use_library``)."""
    if path is None:
        return
    from harness.adapters.native_abi import AbiError, use_library

    try:
        use_library(path)
    except AbiError as exc:
        raise UsageError(f"--native-lib: {exc}") from None


def _cmd_adapters(_args: argparse.Namespace) -> int:
    from harness.adapters.base import Capability
    from harness.adapters.registry import UnknownAdapter, load_adapter, names

    for name in names():
        try:
            cls = load_adapter(name)
        except UnknownAdapter as exc:
            print(f"{name:12} unavailable  {exc}")
            continue
        availability = cls.available()
        state = "available" if availability.ok else f"unavailable ({availability.reason})"
        caps = ", ".join(
            c.name.lower().replace("_", "-")
            for c in Capability
            if c.name and c in cls.capabilities and c != Capability.NONE
        )
        print(f"{name:12} {state}\n{'':12} {cls.description}\n{'':12} capabilities: {caps}")
    return 0


# -- run --------------------------------------------------------------------------------------


def _adapter_classes(
    requested: list[str] | None, *, isolate: bool, timeout: float
) -> dict[str, Any]:
    """The adapters to run, by name; isolated in a worker when asked or by default."""
    from harness.adapters.registry import UnknownAdapter, load_adapter, names
    from harness.runner.worker import isolated

    wanted = requested or ["all"]
    chosen: list[str] = []
    for name in wanted:
        for item in names() if name == "all" else [name]:
            if item not in chosen:
                chosen.append(item)
    classes = {}
    try:
        for name in chosen:
            cls = load_adapter(name)
            classes[name] = isolated(name, timeout_s=timeout) if isolate or cls.isolate else cls
    except UnknownAdapter as exc:
        raise UsageError(str(exc)) from None
    return classes


def _select(jobs: list[Any], patterns: list[str] | None) -> list[Any]:
    """The jobs ``--case`` selects (``harness.options.select``)."""
    try:
        return opt.select(jobs, patterns, base_id=opt.conformance_case_id)
    except opt.NoMatch as exc:
        raise UsageError(f"{exc} (see 'run --list')") from None


def _write_reports(
    out: Path, records: list[dict[str, Any]], summary: dict[str, Any], campaigns: list[Any]
) -> None:
    from harness.report import write_html, write_junit
    from harness.report.summary import write_summary

    write_summary(summary, out / "summary.json")
    write_junit(records, out / "junit.xml")
    write_html(records, summary, out / "index.html", campaigns=campaigns)


def _load_campaigns(out: Path, given: list[Path]) -> list[Any]:
    """The fuzz campaigns for the report (OUT/fuzz/*/ and --campaign), read before the run."""
    from harness.report.campaign import CampaignFileError, find_campaigns

    try:
        return find_campaigns(out, given)
    except CampaignFileError as exc:
        raise UsageError(str(exc)) from None


def _load_baseline(path: Path) -> Any:
    from harness.report.baseline import BaselineError, load_baseline

    try:
        return load_baseline(path)
    except BaselineError as exc:
        raise UsageError(str(exc)) from None


def _cmd_baseline(args: argparse.Namespace) -> int:
    """``baseline update``: the failing outcomes of a run become the expected ones."""
    import json

    from harness.report.baseline import baseline_from, keep_reasons, write_baseline

    results = args.source / "results.jsonl"
    if not results.is_file():
        raise UsageError(f"{results} does not exist (run 'sspi-harness run --out {args.source}')")
    records = []
    for number, line in enumerate(results.read_text(encoding="utf-8").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise UsageError(f"{results}:{number}: not a JSON record") from None
    old = _load_baseline(args.out) if args.out.exists() else None
    data = keep_reasons(baseline_from(records), old)
    write_baseline(data, args.out)
    count = sum(len(v) for v in data["adapters"].values())
    print(f"wrote {args.out}: {count} expected failures over {len(data['adapters'])} adapters")
    return 0


def _bench_measures() -> tuple[str, ...]:
    from harness.bench.cli import MEASURES

    return MEASURES


def _cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench.cli import run_bench

    if args.fuzz_adapter:
        _adapter_classes(args.fuzz_adapter, isolate=False, timeout=5.0)  # unknown: exit 2
    return run_bench(args)


def _cmd_fuzz(args: argparse.Namespace) -> int:
    """Campaigns live in harness.fuzzing, which parses its own options."""
    from harness.fuzzing.cli import main_fuzz

    return main_fuzz(args.fuzz_args)


def _regression_phase(adapters: dict[str, Any], store: Any) -> None:
    """Replay every regression vector (vectors/regressions, from fuzz findings) per adapter."""
    from harness.fuzzing.regressions import replay_regressions

    for name in adapters:
        for record in replay_regressions(name):
            if (name, record.get("case")) not in store.done:
                store.append(record)


def _cmd_mutants(args: argparse.Namespace) -> int:
    """Mutation score: every shipped mutant must be killed by some case."""
    import json

    from harness.mutation import run_mutants

    try:
        report = run_mutants(profile=args.profile, names=args.names or None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for line in report.lines():
        print(line)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return 0 if report.ok else 1


def _property_phase(adapters: dict[str, Any], store: Any, examples: int, *, peers: bool) -> None:
    """The hypothesis conformance machine per adapter: alone, and against the reference in
    each role the adapter can play. An adapter the runner isolates runs it in a child process
    too (a crash is CRASH, a call past its --timeout TIMEOUT); the others in this process."""
    from harness.adapters.base import Capability
    from harness.adapters.registry import load_adapter
    from harness.conformance import isolated_property_phase, property_phase
    from harness.runner.worker import WorkerAdapter

    for name, cls in adapters.items():
        worker = cls if issubclass(cls, WorkerAdapter) else None
        real = load_adapter(worker.target) if worker is not None else cls
        roles: list[str | None] = [None]
        if peers and name != "reference":
            roles += [
                r
                for r, c in (("client", Capability.CLIENT), ("server", Capability.SERVER))
                if c in real.capabilities
            ]
        for role in roles:
            if worker is not None:
                record = isolated_property_phase(
                    worker.target, examples=examples, role=role, timeout_s=worker.timeout_s
                )
            else:
                record = property_phase(real, examples=examples, role=role)
            record["adapter"] = name
            if (name, record["case"]) not in store.done:
                store.append(record)


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.adapters.registry import load_adapter
    from harness.report import summarize
    from harness.report.baseline import review
    from harness.report.summary import failing_outcomes
    from harness.runner.engine import (
        REFERENCE,
        AdapterPool,
        plan,
        plan_jobs,
        run_jobs,
        sanity_notes,
    )
    from harness.runner.store import ResultStore
    from harness.scenarios import CatalogueError, load_catalogue

    try:
        cases = load_catalogue()
    except CatalogueError as exc:
        raise UsageError(f"scenario catalogue: {exc}") from None
    baseline = _load_baseline(args.baseline) if args.baseline else None
    campaigns = _load_campaigns(args.out, args.campaign)
    adapters = _adapter_classes(args.adapter, isolate=args.isolate, timeout=args.timeout)
    if baseline is not None and (problem := review(baseline, args.baseline, adapters).error):
        raise UsageError(problem)
    jobs = _select(
        plan_jobs(
            adapters, plan(cases), against_reference=not args.no_peers, interop=not args.no_peers
        ),
        args.case,
    )
    if args.list:
        for job in jobs:
            print(f"{job.adapter:12} {job.id:70} {job.planned.case.scenario.source_ref}")
        scenarios = len({j.planned.case.scenario.id for j in jobs})
        print(f"{len(jobs)} cases from {scenarios} scenarios")
        return 0
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder")
    pool_classes = dict(adapters)
    if any(j.peer == REFERENCE for j in jobs) and REFERENCE not in pool_classes:
        pool_classes[REFERENCE] = load_adapter(REFERENCE)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    clock = time.perf_counter()
    store = ResultStore(args.out, resume=args.resume)
    pool = AdapterPool(pool_classes)
    already = sum((j.adapter, j.id) in store.done for j in jobs)
    progress = _Progress(len(jobs), quiet=args.quiet, done=already)
    interrupted = False
    broken = ""
    try:
        run_jobs(jobs, pool, store, profile=args.profile, on_case=progress.advance)
        if not args.case:
            _regression_phase(adapters, store)
        if args.properties:
            _property_phase(adapters, store, args.properties, peers=not args.no_peers)
    except KeyboardInterrupt:
        interrupted = True
    except Exception as exc:  # a harness bug: keep what finished, then say so in one line
        broken = f"{type(exc).__name__}: {exc}"
    finally:
        progress.close()
        pool.close()
        store.close()
    summary = summarize(
        store.records,
        started=started,
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        duration_s=time.perf_counter() - clock,
        profile=args.profile,
    )
    summary["notes"] = sanity_notes(store.records)
    verdict = None
    if baseline is not None:
        from harness.report.baseline import gate

        verdict = gate(store.records, baseline)
        summary["gate"] = {
            "baseline": str(args.baseline),
            "expected_failures": verdict.expected_failures,
            "regressions": len(verdict.regressions),
            "unexpected_passes": len(verdict.unexpected_passes),
        }
    _write_reports(args.out, store.records, summary, campaigns)
    if verdict is not None and baseline is not None:
        for line in verdict.lines():
            print(line, file=sys.stderr)
        if not (args.case or args.no_peers or interrupted or broken):  # a whole run
            for line in review(baseline, args.baseline, adapters, store.records).stale:
                print(f"warning: {line}", file=sys.stderr)
    if not args.quiet or interrupted:
        for name, counts in summary["adapters"].items():
            text = ", ".join(f"{k} {v}" for k, v in counts.items())
            print(f"{name}: {text}", file=sys.stderr)
        for note in summary["notes"]:
            print(f"warning: {note}", file=sys.stderr)
        print(f"report: {args.out / 'index.html'}", file=sys.stderr)
    if interrupted:
        print(
            f"{PROG}: interrupted; finished cases are in {store.path} (--resume to go on)",
            file=sys.stderr,
        )
        return 130
    if broken:
        print(
            f"{PROG}: error: internal error ({broken}); finished cases are in {store.path} "
            "(--resume to go on)",
            file=sys.stderr,
        )
        return 2
    if verdict is not None:
        gate_text = "passed" if verdict.ok else "failed"
        print(
            f"gate {gate_text}: {len(verdict.regressions)} regressions, "
            f"{len(verdict.unexpected_passes)} unexpected passes, "
            f"{verdict.expected_failures} expected failures",
            file=sys.stderr,
        )
        return 0 if verdict.ok else 1
    failed = any(r.get("outcome") in failing_outcomes for r in store.records)
    return 1 if failed else 0


# Without a terminal (CI logs), progress is a plain line on stderr about this often.
PLAIN_INTERVAL_S = 10.0


class Ticker:
    """True at the first call, then once ``interval_s`` has passed since it last was: when to
    print a plain progress line (``run`` and ``fuzz``)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return True


class _Progress:
    """A rich progress bar on a terminal; otherwise a plain line on stderr about every
    PLAIN_INTERVAL_S (cases done/total, elapsed, ETA), so that CI logs show a long run moving;
    nothing with --quiet. ``done`` counts the cases a resumed run already has."""

    def __init__(self, total: int, *, quiet: bool, done: int = 0) -> None:
        self._bar: Any = None
        self._ticker: Ticker | None = None
        self._total, self._done, self._ran = total, done, 0
        self._started = time.monotonic()
        if quiet:
            return
        if not sys.stderr.isatty():
            self._ticker = Ticker(PLAIN_INTERVAL_S)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("cases", total=total, completed=done)

    def advance(self, record: dict[str, Any]) -> None:
        self._done += 1
        self._ran += 1
        if self._bar is not None:
            self._bar.update(
                self._task, advance=1, description=f"{record['adapter']} {record['case']}"
            )
        elif self._ticker is not None and self._ticker.due():
            print(self.line(record), file=sys.stderr, flush=True)

    def line(self, record: dict[str, Any]) -> str:
        """``cases 120/4000  12 s elapsed  ETA 6:31  reference sign-tamper-data[ntlmv2]``: the
        ETA from the pace of the cases run so far in this session."""
        elapsed = time.monotonic() - self._started
        eta = elapsed / self._ran * max(self._total - self._done, 0)
        return (
            f"cases {self._done}/{self._total}  {_duration(elapsed)} elapsed  "
            f"ETA {_duration(eta)}  {record['adapter']} {record['case']}"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _duration(seconds: float) -> str:
    """``42 s``, ``6:31``, ``1:02:03``."""
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


# -- vectors ----------------------------------------------------------------------------------


def _vector_files(files: list[Path]) -> list[Path]:
    from harness.vectors.check import default_vector_paths

    for path in files:
        if path.is_dir():
            raise UsageError(f"vector file {path} is a folder (give its files: {path}/*.json)")
        if not path.is_file():
            raise UsageError(f"vector file {path} does not exist")
    return files or default_vector_paths()


def _cmd_vectors(args: argparse.Namespace) -> int:
    if args.vectors_command == "lint":
        from harness.vectors.lint import lint

        paths = _vector_files(args.files)
        problems = lint(paths)
        for problem in problems:
            print(problem)
        print(f"{len(paths)} files, {len(problems)} problems")
        return 2 if problems else 0

    from harness.adapters.registry import UnknownAdapter, load_adapter
    from harness.vectors.check import check
    from harness.vectors.lint import lint

    paths = _vector_files(args.files)
    problems = lint(paths)
    if problems:
        raise UsageError(f"{problems[0]} (run 'vectors lint' for all {len(problems)} problems)")
    try:
        adapter = load_adapter(args.adapter)()
    except UnknownAdapter as exc:
        raise UsageError(str(exc)) from None
    results = check(paths, adapter)
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        detail = f"  {result.detail}" if result.detail else ""
        print(
            f"{result.outcome:11} {Path(result.file).name}#{result.tcId} {result.comment}{detail}"
        )
    print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" of {len(results)} vectors")
    return 1 if counts.get("FAIL") or counts.get("ERROR") else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = list(sys.argv[1:] if argv is None else argv)
        if arguments[:1] == ["fuzz"]:  # the fuzz command parses its own options
            from harness.fuzzing.cli import main_fuzz

            return main_fuzz(arguments[1:])
        args = _parser().parse_args(arguments)
        use_native_lib(getattr(args, "native_lib", None))
        command = {
            "run": _cmd_run,
            "adapters": _cmd_adapters,
            "vectors": _cmd_vectors,
            "baseline": _cmd_baseline,
            "mutants": _cmd_mutants,
            "fuzz": _cmd_fuzz,
            "bench": _cmd_bench,
        }
        return command[args.command](args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"{PROG}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
