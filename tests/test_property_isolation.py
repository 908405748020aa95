"""The property phase of isolated adapters runs in a child process: a crash is CRASH naming
the signal and the call, a hang is TIMEOUT, a conformance failure stays FAIL with Hypothesis's
falsifying steps, and the harness goes on."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.conformance import isolated_property_phase

# Adapters the child process must import too: written to a module on its PYTHONPATH.
ADAPTERS = textwrap.dedent(
    """
    import ctypes
    import time

    from harness.adapters.mutants import WrongDirectionKey
    from harness.adapters.reference import ReferenceAdapter


    class CrashesOnVerify(ReferenceAdapter):
        name = "crashes-on-verify"
        isolate = True

        def verify_signature(self, handle, message, seqno):
            ctypes.memset(0, 0, 16)  # write through NULL: SIGSEGV


    class HangsOnSeal(ReferenceAdapter):
        name = "hangs-on-seal"
        isolate = True

        def encrypt_message(self, handle, qop, message, seqno):
            while True:
                time.sleep(0.05)


    class IsolatedWrongDirection(WrongDirectionKey):
        isolate = True
    """
)


@pytest.fixture
def isolated_adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The module name of ADAPTERS, importable here and in child processes; the cwd (and so
    Hypothesis's example database) is the test's own folder."""
    (tmp_path / "propadapters.py").write_text(ADAPTERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    paths = [str(tmp_path), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.chdir(tmp_path)
    return "propadapters"


def test_crash_is_a_crash_record_naming_the_signal_and_the_call(isolated_adapters: str) -> None:
    record = isolated_property_phase(f"{isolated_adapters}:CrashesOnVerify", examples=20)
    assert record["outcome"] == "CRASH" and record["case"] == "properties[alone]"
    assert "killed by SIGSEGV during verify_signature" in record["message"], record["message"]
    assert record["adapter"] == "crashes-on-verify"
    assert "from propadapters import CrashesOnVerify" in record["reproducer"]


def test_hang_is_a_timeout_within_the_per_call_limit(isolated_adapters: str) -> None:
    started = time.monotonic()
    record = isolated_property_phase(
        f"{isolated_adapters}:HangsOnSeal", examples=20, timeout_s=0.5
    )
    assert record["outcome"] == "TIMEOUT"
    assert "no answer within 0.5 s to encrypt_message" in record["message"], record["message"]
    assert time.monotonic() - started < 30


def test_failure_stays_fail_with_the_falsifying_example(isolated_adapters: str) -> None:
    record = isolated_property_phase(
        f"{isolated_adapters}:IsolatedWrongDirection", examples=50, role="server"
    )
    assert record["outcome"] == "FAIL" and record["case"] == "properties[server]"
    assert record["message"].startswith("mutant-wrong-direction-key (as server) does not conform")
    assert "Minimal failing sequence" in record["message"]
    assert "state.establish(" in record["actual"]["failing_steps"]


def test_run_survives_a_crash_in_the_property_phase(
    isolated_adapters: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code = main(["run", "--adapter", f"{isolated_adapters}:CrashesOnVerify", "--properties",
                 "10", "--case", "sanity*", "--no-peers", "--out", str(out), "--quiet"])
    assert code == 1  # the sanity cases crash too, in their worker
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    (prop,) = [r for r in records if r["kind"] == "properties"]
    assert prop["outcome"] == "CRASH" and "SIGSEGV" in prop["message"]
    assert prop["adapter"] == f"{isolated_adapters}:CrashesOnVerify"
    assert json.loads((out / "summary.json").read_text())["adapters"]
