"""``sspi-harness fuzz``: campaigns and replays (``main_fuzz(argv) -> int``).

    sspi-harness fuzz --adapter NAME --target T [--time S | --runs N] [--jobs J] --out DIR
    sspi-harness fuzz --adapter NAME --replay FILE [--target T]

Exit codes: 0 no finding, 1 findings (or the replayed input still fails), 2 bad options or
input (one line on stderr), 130 interrupted (what was found is kept; campaign.json says so).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

PROG = "sspi-harness fuzz"


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    from harness.fuzzing import TARGET_NAMES
    from harness.options import NATIVE_LIB, positive_float, positive_int

    p = _Parser(prog=PROG, description="Fuzz an adapter with atheris (docs/fuzzing.md).")
    p.add_argument(
        "--adapter",
        metavar="NAME",
        help="adapter name or package.module:Class (for --replay: default the vector's)",
    )
    p.add_argument("--target", metavar="T", help=f"one of {', '.join(TARGET_NAMES)}")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--time", type=positive_float, metavar="S", help="seconds of fuzzing (default 60)"
    )
    budget.add_argument("--runs", type=positive_int, metavar="N", help="inputs to run")
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="J",
        help="fuzzer processes sharing the corpus (default 1)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="campaign folder")
    p.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="replay one input alone: a regression vector (.json), a finding's "
        "folder or finding.json, or a raw input (needs --target)",
    )
    p.add_argument(
        "--isolation",
        choices=("auto", "worker", "none"),
        default="auto",
        help="the adapter in a worker subprocess of the fuzzer (auto: native "
        "adapters) or in the fuzzer process",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="per-call limit before a hang is a finding (default 5)",
    )
    p.add_argument(
        "--profile",
        choices=("accept-reject", "status"),
        default="accept-reject",
        help="differential target: agree on accept/reject (default) or on statuses",
    )
    p.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="more seed inputs (repeatable)",
    )
    p.add_argument(
        "--dict",
        type=Path,
        default=None,
        metavar="FILE",
        help="libFuzzer dictionary (default fuzz/dicts/<target>.dict)",
    )
    p.add_argument("--seed", type=int, default=None, help="libFuzzer -seed (reproducible runs)")
    p.add_argument("--no-minimize", action="store_true", help="do not minimize findings")
    p.add_argument(
        "--regressions",
        type=Path,
        default=None,
        metavar="DIR",
        help="where findings become regression vectors (default vectors/regressions)",
    )
    p.add_argument("--no-regressions", action="store_true", help="do not write regression vectors")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.add_argument(NATIVE_LIB.cli_flag, **NATIVE_LIB.arguments())
    return p


def main_fuzz(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sspi-harness fuzz``; returns the exit code."""
    try:
        args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        _use_native_lib(args.native_lib)
        if args.replay is not None:
            return _replay(args)
        return _campaign(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def _use_native_lib(path: str | None) -> None:
    """``--native-lib``: checked now, then inherited by the fuzzer and worker processes."""
    if path is None:
        return
    from harness.adapters.native_abi import AbiError, use_library

    try:
        use_library(path)
    except AbiError as exc:
        raise UsageError(f"--native-lib: {exc}") from None


# -- campaigns --------------------------------------------------------------------------------


def _campaign(args: argparse.Namespace) -> int:
    from harness.fuzzing.engine import CampaignError, run_campaign
    from harness.fuzzing.regressions import DEFAULT_DIRECTORY

    missing = [
        o
        for o, v in (("--adapter", args.adapter), ("--target", args.target), ("--out", args.out))
        if v is None
    ]
    if missing:
        raise UsageError(f"{', '.join(missing)} required (or --replay FILE)")
    regressions = None if args.no_regressions else (args.regressions or DEFAULT_DIRECTORY)
    live = _Live(args.target, args.adapter, quiet=args.quiet)
    try:
        result = run_campaign(
            args.adapter,
            args.target,
            seconds=args.time,
            runs=args.runs,
            jobs=args.jobs,
            out_dir=args.out,
            progress=live.update,
            isolation=args.isolation,
            timeout_s=args.timeout,
            profile=args.profile,
            corpus_dirs=args.corpus,
            dictionary=args.dict,
            seed=args.seed,
            minimize=not args.no_minimize,
            regressions_dir=regressions,
        )
    except CampaignError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
    except KeyboardInterrupt:  # before the campaign could catch it, or a second Ctrl-C
        live.close()
        _write_page(args.out)
        print(f"{PROG}: interrupted; what was found is in {args.out}", file=sys.stderr)
        return 130
    finally:
        live.close()
    page = _write_page(result.out_dir)
    if not args.quiet:
        _summary(result, page)
    for error in result.errors:
        print(f"{PROG}: warning: {error}", file=sys.stderr)
    if result.interrupted:
        return 130
    return 1 if result.findings else 0


def _write_page(out: Path) -> Path | None:
    """OUT/campaign.html from OUT/campaign.json (when there is one); a failure is a warning:
    the page must never cost the campaign's results."""
    from harness.report.campaign import write_campaign_page

    if not (out / "campaign.json").is_file():
        return None
    try:
        return write_campaign_page(out)
    except Exception as exc:  # noqa: BLE001 - campaign.json is kept whatever happens here
        print(f"{PROG}: warning: campaign page not written: {exc}", file=sys.stderr)
        return None


def _summary(result: Any, page: Path | None) -> None:
    err = sys.stderr
    print(
        f"{result.target} × {result.adapter} ({result.isolation}): {result.execs} execs in "
        f"{result.duration_s:.1f} s ({result.exec_per_s:.0f}/s), cov {result.cov} ft "
        f"{result.ft}, {result.features} features, {result.restarts} restarts, "
        f"{len(result.findings)} findings → {result.out_dir}/campaign.json",
        file=err,
    )
    if page is not None:
        print(f"campaign page: {page}", file=err)
    for record in result.findings:
        repro = record.get("reproducer", {}).get("harness", "")
        state = "confirmed" if record.get("confirmed") else "not reproduced alone"
        print(f"  [{record['kind']}] {record['message']} ({state})", file=err)
        if repro:
            print(f"      {repro}", file=err)


class _Live:
    """One live status line with rich on a terminal; a plain line about every 10 s otherwise
    (``harness.cli.Ticker``, as ``run`` prints its progress)."""

    def __init__(self, target: str, adapter: str, *, quiet: bool) -> None:
        from harness.cli import PLAIN_INTERVAL_S, Ticker

        self.quiet = quiet
        self.live: Any = None
        self.plain = Ticker(PLAIN_INTERVAL_S)
        if quiet:
            return
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live("", console=Console(stderr=True), refresh_per_second=4, transient=True)
            self.live.start()

    def update(self, stats: Any) -> None:
        if self.quiet:
            return
        budget = f"/{stats.budget_s:.0f}" if stats.budget_s else ""
        text = (
            f"{stats.target} × {stats.adapter}  {stats.elapsed_s:5.1f}{budget} s  "
            f"execs {stats.execs} ({stats.exec_per_s:.0f}/s)  cov {stats.cov} ft {stats.ft}  "
            f"features {stats.features}  findings {stats.findings}  restarts {stats.restarts}"
        )
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(text))
        elif self.plain.due():
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


# -- replay -----------------------------------------------------------------------------------


def _replay_path(path: Path) -> Path:
    """``--replay FILE`` as given, else from the project root: reproducers and regression
    vectors name ``vectors/regressions/<id>.json`` relative to it, and must work from any
    directory."""
    from harness.fuzzing.regressions import REPO

    if path.exists() or path.is_absolute() or not (REPO / path).exists():
        return path
    return REPO / path


def _replay(args: argparse.Namespace) -> int:
    from harness.adapters.registry import UnknownAdapter, load_adapter
    from harness.fuzzing import TARGET_NAMES
    from harness.fuzzing.regressions import RegressionError, load_vector
    from harness.fuzzing.targets import OUTCOME_OF_KIND
    from harness.fuzzing.triage import Replayer

    path = _replay_path(args.replay)
    if not path.exists():
        raise UsageError(f"replay file {path} does not exist")
    target, adapter, data, kind, label = args.target, args.adapter, b"", "", str(args.replay)
    finding_json = path / "finding.json" if path.is_dir() else path
    if finding_json.suffix == ".json":
        try:
            record = json.loads(finding_json.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{finding_json}: not readable JSON ({exc})") from None
        if isinstance(record, dict) and "schema" in record:
            try:
                record = load_vector(finding_json)
            except RegressionError as exc:
                raise UsageError(str(exc)) from None
            adapter = adapter or record["found_with"]["adapter"]
            data_hex = record["input_hex"]
        elif isinstance(record, dict) and "signature" in record and "target" in record:
            adapter = adapter or record.get("adapter")
            data_hex = record.get("minimized_hex") or record.get("input_hex", "")
        else:
            raise UsageError(f"{finding_json}: neither a regression vector nor a finding")
        target = target or record["target"]
        kind = record.get("finding", record).get("kind", "")
        try:
            data = bytes.fromhex(data_hex)
        except ValueError:
            raise UsageError(f"{finding_json}: the input is not hexadecimal") from None
    else:
        if target is None:
            raise UsageError("--target is required to replay a raw input")
        data = path.read_bytes()
    if adapter is None:
        raise UsageError("--adapter is required")
    if target not in TARGET_NAMES:
        raise UsageError(f"unknown target {target!r} (known: {', '.join(TARGET_NAMES)})")
    try:
        cls = load_adapter(adapter)
    except UnknownAdapter as exc:
        raise UsageError(str(exc)) from None
    if not cls.available().ok:
        raise UsageError(f"adapter {adapter} is not available here: {cls.available().reason}")
    isolation = args.isolation
    if isolation == "auto" and kind in ("crash", "hang"):
        isolation = "worker"
    replayer = Replayer.open(
        target,
        adapter,
        kind=kind,
        isolation=isolation,
        timeout_s=args.timeout,
        profile=args.profile,
    )
    try:
        result = replayer.run(data)
    finally:
        replayer.close()
    if result.finding is None:
        print(
            f"PASS  {label}: {target} × {adapter}: no finding ({result.ops} calls, "
            f"{result.skipped} skipped)"
        )
        return 0
    outcome = OUTCOME_OF_KIND.get(result.finding.kind, "FAIL")
    print(
        f"{outcome}  {label}: {target} × {adapter}: [{result.finding.kind}] "
        f"{result.finding.message}"
    )
    if result.finding.detail:
        print("      " + result.finding.detail.strip().splitlines()[-1][:300])
    return 1


if __name__ == "__main__":
    sys.exit(main_fuzz())
