"""Isolation: an adapter in a worker subprocess survives real crashes and hangs of the
implementation, and the run goes on."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.cli import main
from harness.runner.executor import execute
from harness.runner.worker import isolated
from harness.scenarios import load_catalogue

CASES = {c.id: c for c in load_catalogue()}
SEGFAULT = "harness.adapters.mutants:SegfaultsOnShortToken"
HANG = "harness.adapters.mutants:HangsOnEmptyMessage"


def test_isolated_reference_passes_and_writes_back_descriptors() -> None:
    adapter = isolated("reference")()
    try:
        for case_id in ("sanity[ntlmv2]", "seal-unseal-client-to-server[ntlmv1]",
                        "sign-readonly-with-checksum-signed[ntlmv2]"):
            assert execute(adapter, CASES[case_id]).outcome == "PASS", case_id
    finally:
        adapter.close()


def test_segfault_is_a_crash_and_the_worker_is_replaced() -> None:
    adapter = isolated(SEGFAULT, timeout_s=5)()
    try:
        crashed = execute(adapter, CASES["sign-token-too-small[ntlmv2]"])
        assert crashed.outcome == "CRASH"
        assert "SIGSEGV" in crashed.message and "make_signature" in crashed.message
        after = execute(adapter, CASES["sign-tamper-data[ntlmv2]"])
        assert after.outcome == "PASS"
        assert adapter.restarts == 1
    finally:
        adapter.close()


def test_hang_is_a_timeout_within_the_limit() -> None:
    adapter = isolated(HANG, timeout_s=0.5)()
    try:
        start = time.monotonic()
        hung = execute(adapter, CASES["sign-verify-empty-message[ntlmv2]"])
        assert hung.outcome == "TIMEOUT" and "0.5 s" in hung.message
        assert time.monotonic() - start < 5
        assert execute(adapter, CASES["sign-tamper-data[ntlmv2]"]).outcome == "PASS"
    finally:
        adapter.close()


def test_run_survives_a_crashing_adapter_and_the_reproducer_replays_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["run", "--adapter", SEGFAULT, "--isolate", "--out", str(out), "--quiet",
                 "--case", "sign-*"])
    assert code == 1
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    crashes = [r for r in records if r["outcome"] == "CRASH"]
    # the mutant dies exactly where a TOKEN shorter than 16 bytes reaches MakeSignature
    assert {r["scenario"] for r in crashes} == {
        "sign-token-too-small",
        "sign-failure-does-not-consume-sequence",
    }
    assert sum(r["outcome"] == "PASS" for r in records) > 50  # the run went on
    crash = next(r for r in crashes if r["kind"] == "conformance")
    argv = [a.strip("'") for a in crash["reproducer"].split()[1:]]
    again = tmp_path / "again"
    assert main([*argv, "--out", str(again), "--quiet"]) == 1
    (replayed,) = [json.loads(x) for x in (again / "results.jsonl").read_text().splitlines()]
    assert replayed["case"] == crash["case"] and replayed["outcome"] == "CRASH"


def test_crash_record_keeps_the_whole_fatal_call() -> None:
    adapter = isolated(SEGFAULT, timeout_s=5)()
    try:
        crashed = execute(adapter, CASES["sign-token-too-small[ntlmv2]"])
    finally:
        adapter.close()
    call = crashed.actual["fatal_call"]
    assert call.startswith("make_signature(") and "'type': 2" in call and not call.endswith("...")
    # what the fatal step should have returned, from the catalogue (20-signing.toml)
    assert crashed.expected == {"step": "0:sign/client", "status": "SEC_E_INVALID_TOKEN"}
    assert crashed.actual["step"] == "0:sign/client"


def _no_handles(text: str) -> str:
    import re

    return re.sub(r"Handle\(lower=\d+", "Handle(lower=N", text)


def test_pipelined_whole_cases_match_call_by_call(tmp_path: Path) -> None:
    """The runner sends whole cases to a worker, several in flight; a crash or a hang in the
    middle of the queue is then run again call by call. Every case gets the record it gets
    when each call is a round trip, in catalogue order, fatal call included."""
    from harness.runner.engine import AdapterPool, Job, plan, run_jobs
    from harness.runner.store import ResultStore

    for target, pattern in ((SEGFAULT, "sign-token-"), (HANG, "sign-verify-empty")):
        planned = [p for p in plan(list(CASES.values())) if p.id.startswith(("sanity", pattern))]
        planned += [p for p in plan(list(CASES.values())) if p.id.startswith("sign-tamper-")]
        cls = isolated(target, timeout_s=1)
        store = ResultStore(tmp_path / target.rsplit(":", 1)[1], resume=False)
        pool = AdapterPool({"m": cls})
        try:
            run_jobs([Job("m", p) for p in planned], pool, store, profile="documented")
        finally:
            pool.close()
            store.close()
        assert [r["case"] for r in store.records] == [p.id for p in planned]
        failing = [r for r in store.records if r["outcome"] in ("CRASH", "TIMEOUT")]
        assert failing and all(r["actual"].get("fatal_call") for r in failing)
        one_by_one = cls()
        try:
            for record, job in zip(store.records, planned, strict=True):
                alone = execute(one_by_one, job.case)
                assert record["outcome"] == alone.outcome
                # handle numbers count the contexts a worker has made: they may differ
                assert _no_handles(record["message"]) == _no_handles(alone.message)
        finally:
            one_by_one.close()
