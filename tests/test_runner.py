"""The runner judges real behaviour: broken adapters derived from the reference are caught."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.adapters.base import CallResult, Capability, Handle
from harness.adapters.reference import ReferenceAdapter
from harness.runner.engine import plan, run_adapter
from harness.runner.executor import execute
from harness.runner.store import ResultStore
from harness.scenarios import load_catalogue
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import SecStatus


def _case(case_id: str) -> Any:
    return next(c for c in load_catalogue() if c.id == case_id)


class WritesIntoReadOnly(ReferenceAdapter):
    """Bug: zeroes every DATA buffer after signing, read-only ones included."""

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result = super().make_signature(handle, qop, message, seqno)
        for buf in (message.buffers or []) if message else []:
            if buf.kind == 1 and buf.data:
                buf.data[:] = bytes(len(buf.data))
        return result


class AcceptsAnything(ReferenceAdapter):
    """Bug: VerifySignature never checks."""

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return CallResult(SecStatus.SEC_E_OK, 0)


class Explodes(ReferenceAdapter):
    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        raise RuntimeError("native layer fell over")


class SignOnly(ReferenceAdapter):
    capabilities = Capability.SIGN | Capability.NTLMV2


def test_reference_passes_every_case() -> None:
    adapter = ReferenceAdapter()
    failures = {c.id: execute(adapter, c).message for c in load_catalogue()}
    assert {k: v for k, v in failures.items() if v} == {}


def test_write_into_readonly_buffer_is_a_failure() -> None:
    result = execute(WritesIntoReadOnly(), _case("sign-readonly-not-signed[ntlmv2]"))
    assert result.outcome == "FAIL"
    assert "read-only buffer 0" in result.message


def test_verifier_that_accepts_tampering_fails() -> None:
    result = execute(AcceptsAnything(), _case("sign-tamper-data[ntlmv2]"))
    assert result.outcome == "FAIL"
    assert result.actual["status"] == "SEC_E_OK"
    assert result.expected["status"] == "SEC_E_MESSAGE_ALTERED"


def test_exception_from_adapter_is_an_error() -> None:
    result = execute(Explodes(), _case("sign-tamper-data[ntlmv2]"))
    assert result.outcome == "ERROR"
    assert "native layer fell over" in result.message


def test_missing_capability_is_unsupported_with_reason(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, resume=False)
    planned = [p for p in plan(load_catalogue()) if p.id == "seal-unseal-client-to-server[ntlmv2]"]
    run_adapter("sign-only", SignOnly, planned, store, profile="documented")
    store.close()
    (record,) = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert record["outcome"] == "UNSUPPORTED"
    assert "SEAL" in record["message"]


def test_plan_puts_sanity_first_and_last() -> None:
    planned = plan(load_catalogue())
    assert planned[0].id == "sanity[start]" and planned[-1].id == "sanity[end]"
    assert sum(p.case.scenario.id == "sanity" for p in planned) == 2


def test_profiles_turn_a_documented_difference_into_non_strict() -> None:
    case = _case("sign-without-integrity[ntlmv2]")
    assert execute(ReferenceAdapter(), case, "documented").outcome == "PASS"
    # Under the windows profile the reference's refusal is allowed only by `documented`.
    assert execute(ReferenceAdapter(), case, "windows").outcome == "NON_STRICT"


def test_non_strict_when_behaviour_matches_only_the_other_profile() -> None:
    class SignsAnyway(ReferenceAdapter):
        """Behaves like Windows: a dummy signature on a context without integrity."""

        def make_signature(
            self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
        ) -> CallResult:
            result = super().make_signature(handle, qop, message, seqno)
            if result.status == SecStatus.SEC_E_QOP_NOT_SUPPORTED and message and message.buffers:
                message.buffers[-1].data = bytearray(b"\x01" + bytes(15))
                return CallResult(SecStatus.SEC_E_OK)
            return result

    case = _case("sign-without-integrity[ntlmv2]")
    assert execute(SignsAnyway(), case, "documented").outcome == "NON_STRICT"
    assert execute(SignsAnyway(), case, "windows").outcome == "PASS"


def test_non_strict_record_reports_the_deciding_step_with_its_evidence() -> None:
    # sizes-without-integrity: only the client end has a Windows recording (16/16).
    result = execute(ReferenceAdapter(), _case("sizes-without-integrity[ntlmv2]"), "windows")
    assert result.outcome == "NON_STRICT"
    assert result.expected == {
        "step": "0:sizes/client",
        "status": "SEC_E_OK",
        "sizes": {"cbMaxSignature": 16, "cbSecurityTrailer": 16},
    }
    assert result.actual["sizes"]["cbMaxSignature"] == 0
    client, server = (step.to_json() for step in result.steps)
    assert client["evidence"]["windows"].startswith("Wine dlls/secur32/tests/ntlm.c")
    assert server["evidence"]["windows"].startswith("not observed")


SIGN_WITH_READONLY_HEADER = """
[[scenario]]
id = "readonly-header-without-integrity"
title = "a profile-dependent sign step over a READONLY header"
source = { ref = "test", quote = "test" }
needs = ["sign", "readonly", "no-integrity"]
variants = ["ntlmv2"]
context = { integrity = false, confidentiality = false }

[[scenario.steps]]
op = "sign"
expect = { documented = "SEC_E_QOP_NOT_SUPPORTED", windows = "SEC_E_OK" }
buffers = [
  { type = "DATA", text = "hdr", flags = ["READONLY"] },
  { type = "DATA", text = "body" },
  { type = "TOKEN", size = 16 },
]
"""


def test_a_non_strict_step_is_still_checked_for_writes_into_read_only_buffers(
    tmp_path: Path,
) -> None:
    class SignsAnywayAndZeroes(WritesIntoReadOnly):
        """Windows-like dummy signature without integrity, and it zeroes read-only DATA."""

        def make_signature(
            self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
        ) -> CallResult:
            result = super().make_signature(handle, qop, message, seqno)
            if result.status == SecStatus.SEC_E_QOP_NOT_SUPPORTED:
                return CallResult(SecStatus.SEC_E_OK)
            return result

    path = tmp_path / "x.toml"
    path.write_text(SIGN_WITH_READONLY_HEADER)
    (case,) = load_catalogue([path])
    assert execute(ReferenceAdapter(), case, "windows").outcome == "NON_STRICT"
    result = execute(SignsAnywayAndZeroes(), case, "documented")
    assert result.outcome == "FAIL"
    assert "read-only buffer 0" in result.message


def test_adapter_that_breaks_mid_run_is_reported_by_closing_sanity(tmp_path: Path) -> None:
    from harness.runner.engine import sanity_notes

    class BreaksAfterAWhile(ReferenceAdapter):
        """Bug: after 20 establishments every handshake fails (a leaked resource, say)."""

        established = 0

        def establish(self, options: Any) -> Any:
            BreaksAfterAWhile.established += 1
            if BreaksAfterAWhile.established > 20:
                return CallResult(SecStatus.SEC_E_INSUFFICIENT_MEMORY, detail="out of handles")
            return super().establish(options)

    store = ResultStore(tmp_path, resume=False)
    run_adapter("leaky", BreaksAfterAWhile, plan(load_catalogue()), store, profile="documented")
    store.close()
    outcomes = {r["case"]: r["outcome"] for r in store.records}
    assert outcomes["sanity[start]"] == "PASS" and outcomes["sanity[end]"] == "FAIL"
    (note,) = sanity_notes(store.records)
    assert note.startswith("leaky: the closing sanity check ended FAIL")


class NonZeroRandomPad(ReferenceAdapter):
    """Bug (invisible to a verifier): leaves the encrypted RandomPad in NTLMv1 signatures,
    which §3.4.4.1 sets to 0. Only a byte-for-byte comparison with the oracle sees it."""

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result = super().make_signature(handle, qop, message, seqno)
        if result.status == 0 and message and message.buffers:
            token = message.buffers[-1].data
            if token is not None and token[4:8] == bytes(4) and token[12:16] != bytes(4):
                token[4:8] = b"\x45\xc8\x44\xe5"
        return result


def test_reference_as_peer_passes_in_both_roles() -> None:
    for case in load_catalogue():
        for role in ("client", "server"):
            result = execute(ReferenceAdapter(), case, peer=ReferenceAdapter(), role=role)
            assert result.outcome == "PASS", (case.id, role, result.message)


def test_mirror_catches_output_bytes_that_differ_from_the_oracle() -> None:
    case = _case("sign-verify-client-to-server[ntlmv1]")
    alone = execute(NonZeroRandomPad(), case)
    assert alone.outcome == "PASS"  # the pad is not compared by the verifier
    against = execute(NonZeroRandomPad(), case, peer=ReferenceAdapter(), role="client")
    assert against.outcome == "FAIL"
    assert "differs from the reference" in against.message


def test_failed_decrypt_must_not_release_plaintext() -> None:
    from harness.adapters.mutants import ReleasesPlaintextOnFailure

    case = _case("seal-tamper-ciphertext[ntlmv2]")
    assert execute(ReferenceAdapter(), case).outcome == "PASS"
    result = execute(ReleasesPlaintextOnFailure(), case)
    assert result.outcome == "FAIL"
    assert "unauthenticated output released" in result.message
