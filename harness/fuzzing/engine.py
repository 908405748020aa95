"""Fuzz campaigns: atheris fuzzer processes, live stats, crash artifacts, restarts, triage.

``run_campaign(adapter, target, seconds=…, runs=…, jobs=…, out_dir=…)`` runs ``jobs`` fuzzer
processes (``python -m harness.fuzzing.child``, the code behind ``fuzz/fuzz_<target>.py``)
that share one working corpus (``OUT/corpus``, seeded from ``fuzz/corpus/<target>``) and the
target's dictionary (``fuzz/dicts/<target>.dict``). Each process records its findings as it
finds them (``OUT/findings/<id>/``) and goes on. The adapter runs in the fuzzer process
(``isolation="none"``) or in a worker subprocess of it (``"worker"``; ``"auto"`` picks the
worker for adapters that declare ``isolate``, i.e. native code):

- with the worker, a segfault or hang of the implementation is a finding the fuzzer records
  with its input; the worker is replaced and fuzzing goes on in the same process;
- in-process, a segfault kills the fuzzer process: libFuzzer writes the input as
  ``OUT/artifacts/job<k>/crash-<sha1>`` (``timeout-*`` for a hang, via ``-timeout``), the
  engine replays it in a worker to name the crash, records it as a finding and starts the
  fuzzer again on the same corpus (``restarts``).

Live stats come from the fuzzer processes' stderr: libFuzzer's ``cov:``/``ft:`` (atheris
instruments ``harness`` and the adapter's Python package), and ours (``##sspi-fuzz`` lines:
execs, distinct (operation, status) features, findings). ``OUT/campaign.json`` holds them as
a time series and is rewritten every few seconds, so an interrupted campaign keeps them.
After the fuzzing, findings are triaged (confirmed alone, minimized) and written as regression
vectors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.fuzzing import TARGET_NAMES
from harness.fuzzing.child import STATS_PREFIX, finding_id, write_finding

REPO = Path(__file__).resolve().parents[2]
FUZZ_DIR = REPO / "fuzz"
DEFAULT_SECONDS = 60.0
DEFAULT_MAX_LEN = 4096
SAMPLE_EVERY_S = 0.5
WRITE_EVERY_S = 2.0
_LIBFUZZER = re.compile(r"^#(\d+)\s+(\w+)\s+(?:cov: (\d+) ft: (\d+))?")
_DONE = re.compile(r"^Done (\d+) (?:runs )?in")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_DICT_ENTRY = re.compile(
    r'^\s*(?:[A-Za-z0-9_]+\s*=\s*)?"((?:[^"\\]|\\\\|\\"|\\x[0-9A-Fa-f]{2})*)"\s*$'
)


class CampaignError(ValueError):
    """A campaign cannot start (unknown target or adapter, corrupt corpus, bad option)."""


@dataclass
class CampaignStats:
    """A live snapshot, given to the ``progress`` callback about twice a second."""

    target: str
    adapter: str
    elapsed_s: float
    budget_s: float | None
    execs: int
    exec_per_s: float
    cov: int
    ft: int
    features: int
    findings: int
    restarts: int
    running: int
    calls: int = 0  # calls that reached the adapter (an input makes 0 to a few)


@dataclass
class CampaignResult:
    adapter: str
    target: str
    out_dir: Path
    isolation: str
    jobs: int
    execs: int
    duration_s: float
    exec_per_s: float
    calls: int
    cov: int
    ft: int
    features: int
    findings: list[dict[str, Any]]
    restarts: int
    interrupted: bool
    series: list[dict[str, Any]] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _Child:
    """What one fuzzer process has reported so far."""

    execs: int = 0
    calls: int = 0
    cov: int = 0
    ft: int = 0
    features: int = 0
    done: int | None = None
    hits: dict[str, int] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=60))

    @property
    def total(self) -> int:
        return self.done if self.done is not None else self.execs


# -- validation -------------------------------------------------------------------------------


def check_corpus(directory: Path, max_len: int) -> int:
    """The number of inputs in a corpus directory; CampaignError for a corrupt entry."""
    if not directory.is_dir():
        raise CampaignError(f"corpus {directory} is not a directory")
    count = 0
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_file():
            raise CampaignError(f"corpus entry {entry} is not a regular file")
        try:
            size = entry.stat().st_size
            with entry.open("rb"):
                pass
        except OSError as exc:
            raise CampaignError(f"corpus file {entry} cannot be read: {exc.strerror}") from None
        if size > max_len:
            raise CampaignError(
                f"corpus file {entry} is {size} bytes, over the {max_len}-byte -max_len "
                "(libFuzzer would cut it)"
            )
        count += 1
    return count


def check_dictionary(path: Path) -> int:
    """The number of entries of a libFuzzer dictionary; CampaignError for a bad line."""
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise CampaignError(f"dictionary {path} cannot be read: {exc.strerror}") from None
    count = 0
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not _DICT_ENTRY.match(line):
            raise CampaignError(f"{path}:{number}: not a libFuzzer dictionary entry: {line[:60]}")
        count += 1
    return count


def _adapter_path(adapter: Any) -> str:
    if isinstance(adapter, str):
        return adapter
    if isinstance(adapter, type):
        return f"{adapter.__module__}:{adapter.__qualname__}"
    raise CampaignError(f"adapter must be a registry name or an Adapter class, not {adapter!r}")


def _resolve(adapter: str, isolation: str) -> str:
    from harness.adapters.registry import UnknownAdapter, load_adapter
    from harness.fuzzing.targets import resolve_isolation

    try:
        cls = load_adapter(adapter)
    except UnknownAdapter as exc:
        raise CampaignError(str(exc)) from None
    availability = cls.available()
    if not availability.ok:
        raise CampaignError(f"adapter {adapter} is not available here: {availability.reason}")
    try:
        return resolve_isolation(cls, isolation)
    except ValueError as exc:
        raise CampaignError(str(exc)) from None


# -- the campaign -----------------------------------------------------------------------------


class _Campaign:
    target: str
    adapter: str
    isolation: str
    profile: str
    jobs: int
    seconds: float | None
    runs: int | None
    out: Path
    timeout_s: float
    instrument: bool
    max_len: int
    dictionary: Path | None
    seed: int | None
    corpus_dirs: list[Path]
    started_at: str
    command_line: str

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.finished_execs = 0
        self.finished_calls = 0
        self.current: dict[int, _Child] = {}
        self.best = {"cov": 0, "ft": 0, "features": 0}
        self.restarts = 0
        self.errors: list[str] = []
        self.series: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.runs_left = self.runs
        self.quick_failures: dict[int, int] = {}
        self.interrupted_late = False
        self.hits: dict[str, int] = {}  # finding id → inputs that produced it, all processes

    # -- fuzzer processes ---------------------------------------------------------------------

    def remaining_s(self) -> float | None:
        if self.seconds is None:
            return None
        return self.seconds - (time.monotonic() - self.started)

    def command(self, job: int) -> list[str] | None:
        remaining = self.remaining_s()
        if remaining is not None and remaining < 0.5:
            return None
        with self.lock:
            runs = None
            if self.runs is not None:
                done = self.finished_execs + sum(c.total for c in self.current.values())
                runs = (
                    (self.runs - done) // max(self.jobs, 1) if self.jobs > 1 else self.runs - done
                )
                if runs <= 0:
                    return None
        artifacts = self.out / "artifacts" / f"job{job}"
        artifacts.mkdir(parents=True, exist_ok=True)
        per_input = max(1, math.ceil(self.timeout_s))
        if self.isolation == "worker":
            per_input = max(10, math.ceil(self.timeout_s * 6) + 10)
        cmd = [
            sys.executable,
            "-m",
            "harness.fuzzing.child",
            "--target",
            self.target,
            "--adapter",
            self.adapter,
            "--isolation",
            self.isolation,
            "--timeout",
            f"{self.timeout_s:g}",
            "--profile",
            self.profile,
            "--record",
            str(self.out / "findings"),
            "--stats-interval",
            f"{SAMPLE_EVERY_S:g}",
        ]
        if not self.instrument:
            cmd.append("--no-instrument")
        cmd += [
            f"-artifact_prefix={artifacts}{os.sep}",
            f"-max_len={self.max_len}",
            f"-timeout={per_input}",
            "-print_final_stats=1",
        ]
        if remaining is not None:
            cmd.append(f"-max_total_time={max(1, int(remaining))}")
        if runs is not None:
            cmd.append(f"-atheris_runs={runs}")
        if self.dictionary is not None:
            cmd.append(f"-dict={self.dictionary}")
        if self.seed is not None:
            cmd.append(f"-seed={self.seed + job}")
        cmd.append(str(self.out / "corpus"))
        return cmd

    def job(self, job: int) -> None:
        log_path = self.out / "logs" / f"job{job}.log"
        while not self.stop.is_set():
            cmd = self.command(job)
            if cmd is None:
                return
            child = _Child()
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
            )
            env.setdefault("PYTHONUNBUFFERED", "1")
            started = time.monotonic()
            with (
                open(log_path, "ab") as log,
                open(self.out / "logs" / f"job{job}.stdout", "ab") as stdout,
            ):
                log.write(("$ " + " ".join(cmd) + "\n").encode())
                proc = subprocess.Popen(
                    cmd,
                    stdout=stdout,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
                with self.lock:
                    self.children[job] = proc
                    self.current[job] = child
                assert proc.stderr is not None
                for raw in proc.stderr:
                    log.write(raw)
                    self.parse(child, raw.decode("utf-8", "replace").rstrip("\n"))
                code = proc.wait()
            with self.lock:
                self._keep_best(child)
                self.children.pop(job, None)
                self.current.pop(job, None)
                self.finished_execs += child.total
                self.finished_calls += child.calls
                for fid, count in child.hits.items():
                    self.hits[fid] = self.hits.get(fid, 0) + count
            if self.stop.is_set():
                return
            for artifact in child.artifacts:
                self.artifact(Path(artifact), child)
            if code == 0:
                if self.command(job) is None:
                    return
                continue  # the budget was split between jobs: go on with what is left
            if not child.artifacts and time.monotonic() - started < 5 and child.total == 0:
                failures = self.quick_failures.get(job, 0) + 1
                self.quick_failures[job] = failures
                if failures >= 3:
                    said = " | ".join(list(child.tail)[-4:])
                    self.errors.append(
                        f"job {job}: the fuzzer process keeps failing at start "
                        f"(exit {code}): {said}"
                    )
                    return
            with self.lock:
                self.restarts += 1

    def parse(self, child: _Child, line: str) -> None:
        child.tail.append(line)
        if line.startswith(STATS_PREFIX):
            try:
                stats = json.loads(line[len(STATS_PREFIX) :])
            except ValueError:
                return
            child.execs = max(child.execs, int(stats.get("execs", 0)))
            child.calls = max(child.calls, int(stats.get("ops", 0)))
            child.features = max(child.features, int(stats.get("features", 0)))
            hits = stats.get("hits")
            if isinstance(hits, dict):
                child.hits = {str(k): int(v) for k, v in hits.items()}
            return
        match = _LIBFUZZER.match(line)
        if match:
            child.execs = max(child.execs, int(match.group(1)))
            if match.group(3):
                child.cov = max(child.cov, int(match.group(3)))
                child.ft = max(child.ft, int(match.group(4)))
            return
        match = _DONE.match(line)
        if match:
            child.done = int(match.group(1))
            return
        match = _ARTIFACT.search(line)
        if match:
            child.artifacts.append(match.group(1))

    def artifact(self, path: Path, child: _Child) -> None:
        """A libFuzzer artifact (the fuzzer process died on this input): name it and record it."""
        try:
            data = path.read_bytes()
        except OSError:
            return
        # the input must not kill the next fuzzer process too (a crashing seed would end
        # every restart at corpus loading): take it out of the working corpus
        (self.out / "corpus" / hashlib.sha1(data).hexdigest()).unlink(missing_ok=True)
        tail = "\n".join(child.tail)
        if "Uncaught Python exception" in tail:
            finding = _python_exception(tail)
        else:
            hint = "hang" if path.name.startswith(("timeout-", "slow-unit-")) else "crash"
            if path.name.startswith("oom-") or "out-of-memory" in tail:
                hint = "oom"
            finding = self.confirm(data, hint)
        write_finding(
            self.out / "findings",
            target=self.target,
            adapter=self.adapter,
            isolation=self.isolation,
            finding=finding,
            data=data,
            how=f"libFuzzer artifact {path.name}",
        )

    def confirm(self, data: bytes, hint: str) -> dict[str, Any]:
        """Replay a crashing input with the adapter in a worker, for the signal and the call."""
        from harness.fuzzing.triage import Replayer

        replayer = None
        try:
            replayer = Replayer.open(
                self.target,
                self.adapter,
                kind="crash",
                timeout_s=self.timeout_s,
                profile=self.profile,
            )
            found = replayer.check(data)
        except Exception as exc:  # noqa: BLE001 - naming the crash must not end the campaign
            found = None
            self.errors.append(f"replaying a crash in a worker failed: {exc}")
        finally:
            if replayer is not None:
                replayer.close()
        if found is not None:
            record = found.to_json()
            record["detail"] = (record.get("detail") or "") + " (the fuzzer process died on it)"
            return record
        kind = "hang" if hint == "hang" else "crash"
        return {
            "kind": kind,
            "signature": f"{kind}:{hint}:unconfirmed",
            "message": f"the fuzzer process died ({hint}); the input does not reproduce alone",
            "detail": "",
        }

    # -- stats --------------------------------------------------------------------------------

    def snapshot(self) -> CampaignStats:
        with self.lock:
            running = list(self.current.values())
            execs = self.finished_execs + sum(c.total for c in running)
            calls = self.finished_calls + sum(c.calls for c in running)
            for child in running:
                self._keep_best(child)
            restarts = self.restarts
        elapsed = time.monotonic() - self.started
        findings = _count_findings(self.out / "findings")
        return CampaignStats(
            self.target,
            self.adapter,
            round(elapsed, 3),
            self.seconds,
            execs,
            round(execs / elapsed, 1) if elapsed > 0 else 0.0,
            self.best["cov"],
            self.best["ft"],
            self.best["features"],
            findings,
            restarts,
            len(running),
            calls,
        )

    def _keep_best(self, child: _Child) -> None:
        """Coverage and features are per process: the campaign reports the best so far."""
        self.best["cov"] = max(self.best["cov"], child.cov)
        self.best["ft"] = max(self.best["ft"], child.ft)
        self.best["features"] = max(self.best["features"], child.features)

    def sample(self) -> CampaignStats:
        stats = self.snapshot()
        self.series.append(
            {
                "t": stats.elapsed_s,
                "execs": stats.execs,
                "calls": stats.calls,
                "cov": stats.cov,
                "ft": stats.ft,
                "features": stats.features,
                "findings": stats.findings,
            }
        )
        return stats

    def write(
        self,
        stats: CampaignStats,
        *,
        interrupted: bool,
        final: bool,
        findings: list[dict[str, Any]] | None = None,
        regressions: Sequence[str] = (),
    ) -> None:
        from harness.fuzzing.triage import load_findings

        listed = findings if findings is not None else load_findings(self.out / "findings")
        body = {
            "schema": "sspi-harness/fuzz-campaign/1",
            "target": self.target,
            "adapter": self.adapter,
            "isolation": self.isolation,
            "profile": self.profile,
            "jobs": self.jobs,
            "budget": {"seconds": self.seconds, "runs": self.runs},
            "started": self.started_at,
            "final": final,
            "interrupted": interrupted,
            "duration_s": stats.elapsed_s,
            "execs": stats.execs,
            "exec_per_s": stats.exec_per_s,
            "calls": stats.calls,
            "coverage": {"cov": stats.cov, "ft": stats.ft, "features": stats.features},
            "restarts": stats.restarts,
            "findings": [_summary(f) for f in listed],
            "regressions": list(regressions),
            "errors": list(self.errors),
            "series": self.series,
            "command": self.command_line,
        }
        path = self.out / "campaign.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, path)

    def terminate(self) -> None:
        self.stop.set()
        with self.lock:
            procs = list(self.children.values())
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGINT)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 5
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def _seed(corpus: Path, sources: Sequence[Path]) -> None:
    """Copy seed inputs into the working corpus under libFuzzer's names (their SHA-1), so
    that an input that kills the fuzzer can be taken out again."""
    for directory in sources:
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            data = entry.read_bytes()
            target = corpus / hashlib.sha1(data).hexdigest()
            if not target.exists():
                shutil.copyfile(entry, target)


def _python_exception(tail: str) -> dict[str, Any]:
    """A Python exception that escaped the target code itself: a harness bug."""
    lines = tail.splitlines()
    start = next((i for i, text in enumerate(lines) if "Uncaught Python exception" in text), 0)
    block = lines[start + 1 :]
    head = block[0].strip() if block else "exception"
    files = [text.strip() for text in block if text.strip().startswith("File ")]
    where = files[-1] if files else "?"
    match = re.search(r'File "([^"]+)", line (\d+), in (\S+)', where)
    place = (
        f"{os.path.basename(match.group(1))}:{match.group(3)}:{match.group(2)}" if match else "?"
    )
    name = head.split(":", 1)[0]
    return {
        "kind": "harness-error",
        "signature": f"harness-error:{name}:{place}",
        "message": f"{head} escaped the fuzz target itself ({place}): a harness bug",
        "detail": "\n".join(block[:40]),
    }


def _count_findings(directory: Path) -> int:
    try:
        return sum(1 for p in directory.iterdir() if (p / "finding.json").is_file())
    except OSError:
        return 0


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "hits",
        "kind",
        "signature",
        "message",
        "found",
        "found_by",
        "confirmed",
        "input_size",
        "minimized_size",
        "input_hex",
        "minimized_hex",
        "reproducer",
        "regression",
        "folder",
    )
    return {k: record[k] for k in keys if k in record}


def run_campaign(
    adapter: Any,
    target: str,
    *,
    seconds: float | None = None,
    runs: int | None = None,
    jobs: int = 1,
    out_dir: Path | str,
    progress: Callable[[CampaignStats], None] | None = None,
    isolation: str = "auto",
    timeout_s: float = 5.0,
    profile: str = "accept-reject",
    corpus_dirs: Sequence[Path | str] = (),
    dictionary: Path | str | None = None,
    seed: int | None = None,
    minimize: bool = True,
    minimize_budget_s: float = 20.0,
    regressions_dir: Path | str | None = None,
    fuzz_dir: Path | str | None = None,
    instrument: bool = True,
    max_len: int = DEFAULT_MAX_LEN,
) -> CampaignResult:
    """Fuzz ``target`` against ``adapter`` (registry name, ``package.module:Class``, or an
    Adapter class) for ``seconds`` and/or ``runs`` (default 60 s) with ``jobs`` fuzzer
    processes; results in ``out_dir``. Raises CampaignError when the campaign cannot start.
    Ctrl-C (KeyboardInterrupt) stops the fuzzers; what was found is kept and the result has
    ``interrupted`` set. ``regressions_dir``: where the findings' regression vectors go (None:
    not written)."""
    name = _adapter_path(adapter)
    if target not in TARGET_NAMES:
        raise CampaignError(f"unknown target {target!r} (known: {', '.join(TARGET_NAMES)})")
    if jobs < 1:
        raise CampaignError(f"jobs must be at least 1, not {jobs}")
    if seconds is not None and seconds <= 0:
        raise CampaignError(f"seconds must be positive, not {seconds}")
    if runs is not None and runs <= 0:
        raise CampaignError(f"runs must be positive, not {runs}")
    if seconds is None and runs is None:
        seconds = DEFAULT_SECONDS
    resolved = _resolve(name, isolation)
    fuzz = Path(fuzz_dir) if fuzz_dir is not None else FUZZ_DIR
    seeds = [fuzz / "corpus" / target] if (fuzz / "corpus" / target).is_dir() else []
    extra = [Path(d) for d in corpus_dirs]
    for directory in [*seeds, *extra]:
        check_corpus(directory, max_len)
    if dictionary is None:
        default = fuzz / "dicts" / f"{target}.dict"
        dict_path = default if default.is_file() else None
    else:
        dict_path = Path(dictionary)
        if not dict_path.is_file():
            raise CampaignError(f"dictionary {dict_path} does not exist")
    if dict_path is not None:
        check_dictionary(dict_path)
    out = Path(out_dir)
    for sub in ("corpus", "findings", "artifacts", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _seed(out / "corpus", [*seeds, *extra])
    campaign = _Campaign(
        target=target,
        adapter=name,
        isolation=resolved,
        profile=profile,
        jobs=jobs,
        seconds=seconds,
        runs=runs,
        out=out,
        timeout_s=timeout_s,
        instrument=instrument,
        max_len=max_len,
        dictionary=dict_path,
        seed=seed,
        corpus_dirs=[d.resolve() for d in [*seeds, *extra]],
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command_line=" ".join(sys.argv),
    )
    interrupted = False
    threads = [
        threading.Thread(target=campaign.job, args=(k,), name=f"fuzz-job-{k}", daemon=True)
        for k in range(jobs)
    ]
    last_write = 0.0
    try:
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=SAMPLE_EVERY_S / len(threads))
            stats = campaign.sample()
            if progress is not None:
                progress(stats)
            if time.monotonic() - last_write > WRITE_EVERY_S:
                campaign.write(stats, interrupted=False, final=False)
                last_write = time.monotonic()
    except KeyboardInterrupt:
        interrupted = True
        campaign.terminate()
        for thread in threads:
            thread.join(timeout=5)
    stats = campaign.sample()
    if progress is not None:
        progress(stats)
    campaign.write(stats, interrupted=interrupted, final=False)
    findings, regressions = _triage(
        campaign,
        minimize=minimize and not interrupted,
        budget_s=minimize_budget_s,
        regressions_dir=None if regressions_dir is None else Path(regressions_dir),
    )
    campaign.write(
        stats,
        interrupted=interrupted or campaign.interrupted_late,
        final=True,
        findings=findings,
        regressions=regressions,
    )
    return CampaignResult(
        adapter=name,
        target=target,
        out_dir=out,
        isolation=resolved,
        jobs=jobs,
        execs=stats.execs,
        duration_s=stats.elapsed_s,
        exec_per_s=stats.exec_per_s,
        calls=stats.calls,
        cov=stats.cov,
        ft=stats.ft,
        features=stats.features,
        findings=findings,
        restarts=stats.restarts,
        interrupted=interrupted or campaign.interrupted_late,
        series=campaign.series,
        regressions=list(regressions),
        errors=list(campaign.errors),
    )


def _triage(
    campaign: _Campaign, *, minimize: bool, budget_s: float, regressions_dir: Path | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Confirm and minimize every finding, then write its regression vector."""
    from harness.adapters.registry import load_adapter
    from harness.fuzzing.regressions import vector_from_finding, write_vector
    from harness.fuzzing.triage import load_findings, triage_folder

    findings = []
    regressions: list[str] = []
    records = load_findings(campaign.out / "findings")
    # Minimization tries inputs nobody ran: if this adapter ever crashed or hung, or is
    # native code, every replay happens in a worker so that triage survives them too.
    risky = (
        campaign.isolation == "worker"
        or load_adapter(campaign.adapter).isolate
        or any(r.get("kind") in ("crash", "hang") for r in records)
    )
    for record in records:
        folder = Path(record["folder"])
        try:
            if not campaign.interrupted_late:
                record = triage_folder(
                    folder,
                    minimize_inputs=minimize,
                    budget_s=budget_s,
                    timeout_s=campaign.timeout_s,
                    profile=campaign.profile,
                    isolation="worker" if risky else None,
                )
        except KeyboardInterrupt:
            campaign.interrupted_late = True
        except Exception as exc:  # noqa: BLE001 - an unreplayable finding is still a finding
            campaign.errors.append(f"triage of {folder.name} failed: {type(exc).__name__}: {exc}")
        record["folder"] = str(folder)
        record["profile"] = campaign.profile
        record["hits"] = max(campaign.hits.get(folder.name, 0), 1)
        if regressions_dir is not None and record.get("kind") != "harness-error":
            path = write_vector(regressions_dir, vector_from_finding(record, regressions_dir))
            record["regression"] = str(path)
            regressions.append(str(path))
        findings.append(record)
    return findings, regressions


def stats_dict(stats: CampaignStats) -> dict[str, Any]:
    return asdict(stats)


__all__ = [
    "CampaignError",
    "CampaignResult",
    "CampaignStats",
    "check_corpus",
    "check_dictionary",
    "finding_id",
    "run_campaign",
]
