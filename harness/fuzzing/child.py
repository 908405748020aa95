"""One atheris fuzzer process: ``fuzz/fuzz_<target>.py`` and the engine's jobs run this.

    python fuzz/fuzz_verify.py [--adapter NAME] [--isolation auto|worker|none]
        [--record DIR] [libFuzzer flags and corpus directories or input files]

Our options are read first; everything else goes to libFuzzer (``-max_total_time=60``,
``-atheris_runs=1000``, ``-artifact_prefix=DIR/``, ``-dict=fuzz/dicts/verify.dict``, corpus
directories, or input files to run once). ``harness`` and the adapter's implementation are
imported under ``atheris.instrument_imports`` so that libFuzzer sees their coverage.

Without ``--record`` (OSS-Fuzz, ClusterFuzzLite, a reproducer) a finding raises
``FuzzFinding``, which atheris reports as a crash and writes as a ``crash-*`` artifact. With
``--record DIR`` (the engine) a finding is written to ``DIR/<target>-<hash>/`` (the input and
``finding.json``, once per signature) and fuzzing goes on; only a real crash or hang of an
in-process adapter ends the process. Stats go to stderr as ``##sspi-fuzz {json}`` lines.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

STATS_PREFIX = "##sspi-fuzz "
# Python packages of each adapter's implementation, instrumented along with harness.
BACKENDS: dict[str, tuple[str, ...]] = {
    "pyspnego": ("spnego",),
    "impacket": ("impacket.ntlm", "impacket.dcerpc.v5.rpcrt"),
    "scapy": ("scapy.layers.ntlm",),
}


class FuzzFinding(AssertionError):
    """A finding, raised so that libFuzzer writes the input as a crash artifact."""


def finding_id(target: str, adapter: str, signature: str) -> str:
    """The name of a finding's folder and regression vector: target and a stable hash."""
    digest = hashlib.sha1(f"{target}|{adapter}|{signature}".encode()).hexdigest()[:12]
    return f"{target}-{digest}"


def reproducers(target: str, adapter: str, isolation: str, input_path: str) -> dict[str, str]:
    """The one-line commands that replay an input alone."""
    iso = "" if isolation == "auto" else f" --isolation {isolation}"
    return {
        "atheris": f"python fuzz/fuzz_{target}.py --adapter {adapter}{iso} {input_path}",
        "harness": (
            f"sspi-harness fuzz --adapter {adapter} --target {target}{iso} --replay {input_path}"
        ),
    }


def write_finding(
    directory: Path,
    *,
    target: str,
    adapter: str,
    isolation: str,
    finding: dict[str, Any],
    data: bytes,
    how: str,
) -> Path | None:
    """Write a finding once per signature: ``DIR/<id>/input`` and ``finding.json``; None when
    that signature is already there (another job, or earlier)."""
    fid = finding_id(target, adapter, finding["signature"])
    folder = directory / fid
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        return None
    (folder / "input").write_bytes(data)
    record = {
        "id": fid,
        "target": target,
        "adapter": adapter,
        "isolation": isolation,
        **finding,
        "input_hex": data.hex(),
        "input_size": len(data),
        "found": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "found_by": how,
        "reproducer": reproducers(target, adapter, isolation, str(folder / "input")),
    }
    tmp = folder / "finding.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, folder / "finding.json")
    return folder


def _options(target: str | None, argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog=os.path.basename(argv[0]) if argv else "fuzz",
        allow_abbrev=False,
        add_help=False,
    )
    if target is None:
        parser.add_argument("--target", required=True)
    parser.add_argument("--adapter", default=os.environ.get("SSPI_FUZZ_ADAPTER", "reference"))
    parser.add_argument(
        "--isolation",
        default=os.environ.get("SSPI_FUZZ_ISOLATION", "auto"),
        choices=("auto", "worker", "none"),
    )
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--profile", default="accept-reject", choices=("accept-reject", "status"))
    parser.add_argument("--record", type=Path, default=None)
    parser.add_argument("--stats-interval", type=float, default=0.5)
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--no-instrument", action="store_true")
    parser.add_argument("--max-calls", type=int, default=None)
    args, rest = parser.parse_known_args(list(argv[1:]))
    if target is not None:
        args.target = target
    return args, rest


def _instrumented(args: argparse.Namespace) -> tuple[Any, Any]:
    """Import the target machinery (and the adapter's implementation) under instrumentation."""
    import atheris

    from harness.fuzzing import TARGET_NAMES

    if args.target not in TARGET_NAMES:
        raise SystemExit(f"unknown target {args.target!r} (known: {', '.join(TARGET_NAMES)})")
    include = ["harness", *BACKENDS.get(args.adapter, ())]
    if args.no_instrument:
        from harness.fuzzing import bench, targets
    else:
        with atheris.instrument_imports(include=include):
            import importlib

            from harness.adapters.registry import load_adapter
            from harness.fuzzing import bench, targets

            cls = load_adapter(args.adapter)  # import the adapter module here, instrumented
            for module in BACKENDS.get(args.adapter, ()):
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass
            del cls
    return targets, bench


def main(target: str | None = None, argv: Sequence[str] | None = None) -> int:
    """Run atheris on one target (``target`` given by the fuzz/fuzz_<target>.py script)."""
    argv = list(sys.argv if argv is None else argv)
    args, rest = _options(target, argv)
    import atheris

    targets, bench = _instrumented(args)
    kwargs: dict[str, Any] = {
        "isolation": args.isolation,
        "timeout_s": args.timeout,
        "profile": args.profile,
    }
    if args.max_calls:
        kwargs["max_calls"] = args.max_calls
    if args.bare:
        one_input = bench.bare_target(args.target, args.adapter, args.isolation)
        run_one: Callable[[bytes], Any] = one_input
        stats = _Stats(args, None)
    else:
        tgt = targets.make_target(args.target, args.adapter, **kwargs)
        stats = _Stats(args, tgt)
        run_one = stats.run

    def test_one_input(data: bytes) -> None:
        run_one(data)
        stats.tick()

    atexit.register(stats.emit)  # libFuzzer exits through exit() at the end of -atheris_runs
    atheris.Setup([argv[0], *rest], test_one_input)
    atheris.Fuzz()
    return 0


class _Stats:
    """Counts, features and findings of this process; records or raises findings."""

    def __init__(self, args: argparse.Namespace, target: Any) -> None:
        self.args = args
        self.target = target
        self.execs = 0
        self.ops = 0
        self.skipped = 0
        self.features: set[tuple[str, ...]] = set()
        self.hits: dict[str, int] = {}
        self.recorded = 0
        self.started = time.monotonic()
        self.last = 0.0
        self.isolation = getattr(target, "isolation", args.isolation)

    def run(self, data: bytes) -> None:
        result = self.target.run(data)
        self.ops += result.ops
        self.skipped += result.skipped
        self.features |= result.features
        finding = result.finding
        if finding is None:
            return
        fid = finding_id(self.args.target, self.args.adapter, finding.signature)
        self.hits[fid] = self.hits.get(fid, 0) + 1
        if self.args.record is None:
            self.emit()
            raise FuzzFinding(f"[{finding.kind}] {finding.message}\n{finding.detail}")
        if self.hits[fid] == 1:
            folder = write_finding(
                self.args.record,
                target=self.args.target,
                adapter=self.args.adapter,
                isolation=self.isolation,
                finding=finding.to_json(),
                data=data,
                how="target",
            )
            if folder is not None:
                self.recorded += 1
                self.emit()

    def tick(self) -> None:
        self.execs += 1
        if self.execs & (self.execs - 1) == 0:  # 1, 2, 4, 8…: short runs report too
            self.emit()
            return
        now = time.monotonic()
        if now - self.last >= self.args.stats_interval:
            self.emit(now)

    def emit(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.last = now
        line = {
            "t": round(now - self.started, 3),
            "execs": self.execs,
            "ops": self.ops,
            "skipped": self.skipped,
            "features": len(self.features),
            "recorded": self.recorded,
            "hits": self.hits,
        }
        sys.stderr.write(STATS_PREFIX + json.dumps(line) + "\n")
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
