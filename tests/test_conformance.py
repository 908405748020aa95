"""The conformance state machine: the reference passes, the mutants fail (the machine has
power), pyspnego's findings are recorded, and the CLI record has the results.jsonl shape."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import Phase, settings

from harness.adapters.base import (
    Adapter,
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    ContextPair,
    Handle,
)
from harness.adapters.mutants import (
    ALL,
    AcceptsReplays,
    IgnoresNegotiatedServices,
    ReleasesPlaintextOnFailure,
    WrapNoEncryptEncrypts,
)
from harness.adapters.reference import ReferenceAdapter
from harness.adapters.spnego_ntlm import PyspnegoAdapter
from harness.conformance import (
    AdapterRaised,
    ConformanceError,
    ConformanceFailure,
    Unsupported,
    property_phase,
    run_conformance_test,
)
from harness.sspi.buffers import SecBufferDesc

NO_EXPLAIN = [p for p in Phase if p is not Phase.explain]
# Deterministic and quick: a fixed seed sequence, no example database, no explain phase.
FAST = settings(max_examples=50, deadline=None, database=None, derandomize=True, phases=NO_EXPLAIN)
# For the mutant sweep: finding a failure is the point, shrinking it costs most of the time.
FIND_ONLY = settings(FAST, max_examples=100, phases=[Phase.generate])

# Mutants whose bug lies outside what the machine exercises, with the reason. The catalogue
# (tests/test_mutants.py) kills them.
OUT_OF_SCOPE: dict[type[Adapter], str] = {
    IgnoresNegotiatedServices: "contexts always negotiate SIGN and SEAL (sealing with integrity "
    "only is a documented/Windows divergence, judged by the catalogue)",
    WrapNoEncryptEncrypts: "fQOP is always 0 (SECQOP_WRAP_NO_ENCRYPT has no public Windows "
    "evidence for NTLM, judged by the catalogue)",
}
IN_PROCESS = [m for m in ALL if not m.isolate]  # the others crash or hang the process


@pytest.mark.parametrize("role", [None, "client", "server"])
def test_reference_conforms(role: str | None) -> None:
    run_conformance_test(ReferenceAdapter, settings=FAST, role=role)


def test_reference_conforms_with_strict_statuses() -> None:
    run_conformance_test(ReferenceAdapter, settings=FAST, strict_statuses=True)


@pytest.mark.parametrize(
    "mutant", [m for m in IN_PROCESS if m not in OUT_OF_SCOPE], ids=lambda m: m.__name__
)
def test_mutant_fails(mutant: type[Adapter]) -> None:
    with pytest.raises(ConformanceFailure) as info:
        run_conformance_test(mutant, settings=FIND_ONLY)
    print(str(info.value).splitlines()[0])


@pytest.mark.parametrize("mutant", list(OUT_OF_SCOPE), ids=lambda m: m.__name__)
def test_out_of_scope_mutant_survives(mutant: type[Adapter]) -> None:
    run_conformance_test(mutant, settings=settings(FIND_ONLY, max_examples=25))


def test_failure_reads_well() -> None:
    with pytest.raises(ConformanceFailure) as info:
        run_conformance_test(AcceptsReplays, settings=FAST, role="server")
    text, steps = str(info.value), info.value.steps
    first = text.splitlines()[0]
    assert first.startswith("mutant-accepts-replays (as server) does not conform: message #")
    assert re.search(r"returned SEC_E_OK, the reference returns SEC_E_OUT_OF_SEQUENCE$", first)
    assert "Minimal failing sequence" in text and steps in text
    assert "state.establish(" in steps and "state.teardown()" in steps
    assert "Explanation" not in text


def test_released_plaintext_is_named() -> None:
    with pytest.raises(ConformanceFailure, match="unauthenticated plaintext released"):
        run_conformance_test(ReleasesPlaintextOnFailure, settings=FAST, role="client")


# -- round trips only, not applicable, unsupported, errors ------------------------------------


class Keyless(ReferenceAdapter):
    """The reference, hiding its flags and session key: no shadow, round trips only."""

    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        pair = super().establish(options)
        if isinstance(pair, ContextPair):
            pair = dataclasses.replace(pair, flags=0, exported_session_key=None)
        return pair


class KeylessAcceptsReplays(Keyless, AcceptsReplays):
    pass


def test_without_the_session_key_round_trips_are_checked() -> None:
    run_conformance_test(Keyless, settings=FAST)
    with pytest.raises(ConformanceFailure, match="expected a failure"):
        run_conformance_test(KeylessAcceptsReplays, settings=FIND_ONLY)


class NoSealing(ReferenceAdapter):
    """EncryptMessage cannot be expressed, and v2 contexts cannot be asked for."""

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        raise CannotExpress("no sealing here")

    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        if options.ntlm_version == "v2":
            raise CannotExpress("no NTLMv2 here")
        return super().establish(options)


def test_cannot_express_is_not_applicable() -> None:
    run_conformance_test(NoSealing, settings=FAST)


class Inexpressible(ReferenceAdapter):
    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        raise CannotExpress("nothing at all")


class Raises(ReferenceAdapter):
    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        raise RuntimeError("boom")


class NoServer(ReferenceAdapter):
    capabilities = ReferenceAdapter.capabilities & ~Capability.SERVER


def test_unsupported_and_raised() -> None:
    with pytest.raises(Unsupported, match="can express none of"):
        run_conformance_test(Inexpressible, settings=FAST)
    with pytest.raises(Unsupported, match="cannot play the server"):
        run_conformance_test(NoServer, settings=FAST, role="server")
    with pytest.raises(AdapterRaised, match="verify_signature raised RuntimeError: boom") as info:
        run_conformance_test(Raises, settings=FAST)
    assert isinstance(info.value.__cause__, RuntimeError)  # the adapter's own traceback
    with pytest.raises(ValueError, match="role"):
        run_conformance_test(ReferenceAdapter, settings=FAST, role="both")


# -- the CLI's record -------------------------------------------------------------------------

RECORD_KEYS = {
    "case",
    "scenario",
    "adapter",
    "outcome",
    "message",
    "duration_s",
    "expected",
    "actual",
    "steps",
    "kind",
}


def test_property_phase_records() -> None:
    passed = property_phase(ReferenceAdapter, examples=10, settings=settings(FAST))
    assert RECORD_KEYS <= set(passed) and json.loads(json.dumps(passed)) == passed
    assert passed["case"] == "properties[alone]" and passed["scenario"] == "properties"
    assert passed["kind"] == "properties" and passed["steps"] == []
    assert passed["outcome"] == "PASS" and passed["adapter"] == "reference"
    assert passed["actual"]["examples_run"] >= 10

    failed = property_phase(AcceptsReplays, examples=50, role="client", settings=FAST)
    assert failed["case"] == "properties[client]" and failed["outcome"] == "FAIL"
    assert failed["actual"]["failing_steps"] in failed["message"]
    assert "state.establish(" in failed["actual"]["failing_steps"]

    assert property_phase(Raises, examples=5, settings=FAST)["outcome"] == "ERROR"
    assert property_phase(NoServer, examples=5, role="server")["outcome"] == "UNSUPPORTED"


# -- pyspnego: what the machine finds ---------------------------------------------------------

needs_pyspnego = pytest.mark.skipif(
    not PyspnegoAdapter.available().ok, reason=PyspnegoAdapter.available().reason
)


class PlainPyspnego(PyspnegoAdapter):
    """pyspnego limited to what its wrap_iov takes: one DATA buffer, no read-only attributes."""

    capabilities = PyspnegoAdapter.capabilities & ~(
        Capability.MULTIPLE_DATA | Capability.READONLY | Capability.READONLY_WITH_CHECKSUM
    )


@needs_pyspnego
def test_pyspnego_seals_only_one_plain_data_buffer() -> None:
    # wrap_iov refuses several DATA buffers ("must only be used with 1 data IOV buffer") and
    # a message whose DATA are all read-only ("no IOV data buffer present").
    with pytest.raises(ConformanceFailure) as info:
        run_conformance_test(PyspnegoAdapter, settings=FAST)
    first = str(info.value).splitlines()[0]
    assert re.search(r"seal by the \w+ .*pyspnego returned SEC_E_INVALID_TOKEN, the reference "
                     r"returns SEC_E_OK$", first), first
    assert "wrap_iov" in info.value.steps


@needs_pyspnego
@pytest.mark.parametrize("role", [None, "client", "server"])
def test_pyspnego_context_unusable_after_a_rejection(role: str | None) -> None:
    # Accept/reject only (the default): after it rejects a tampered, replayed or reordered
    # message, pyspnego also rejects the genuine one: the failure consumed its sequence number
    # and RC4 keystream (MS-NLMP §3.4.4: "SeqNum is not incremented" on failure).
    with pytest.raises(ConformanceFailure) as info:
        run_conformance_test(PlainPyspnego, settings=FAST, role=role)
    first = str(info.value).splitlines()[0]
    assert re.search(r"receive by the \w+: pyspnego returned SEC_E_MESSAGE_ALTERED, the "
                     r"reference returns SEC_E_OK$", first), first
    rejected = re.findall(r"(?:then receive|replayed|delivered to).*: SEC_E_\w+", info.value.steps)
    assert rejected  # a rejection came first


@needs_pyspnego
def test_pyspnego_statuses_differ_when_strict() -> None:
    # strict_statuses: pyspnego answers every rejection with SEC_E_MESSAGE_ALTERED (its
    # BadMICError), where the reference says SEC_E_OUT_OF_SEQUENCE or SEC_E_INVALID_TOKEN.
    with pytest.raises(ConformanceFailure) as info:
        run_conformance_test(PlainPyspnego, settings=FAST, strict_statuses=True)
    first = str(info.value).splitlines()[0]
    assert re.search(r"pyspnego returned SEC_E_MESSAGE_ALTERED, the reference returns "
                     r"SEC_E_(OUT_OF_SEQUENCE|INVALID_TOKEN)$", first), first
