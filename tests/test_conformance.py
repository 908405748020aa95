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
    ReportsWrapNoEncrypt,
    SignatureAtTokenEnd,
    SignsReadonly,
    WrapNoEncryptEncrypts,
    WrongDirectionKey,
)
from harness.adapters.reference import ReferenceAdapter
from harness.adapters.spnego_ntlm import PyspnegoAdapter
from harness.conformance import (
    AdapterRaised,
    ConformanceFailure,
    Unsupported,
    property_phase,
    run_conformance_test,
)
from harness.sspi.buffers import SecBufferDesc
from harness.strategies import context_options

NO_EXPLAIN = [p for p in Phase if p is not Phase.explain]
# Deterministic and quick: a fixed seed sequence, no example database, no explain phase.
FAST = settings(max_examples=50, deadline=None, database=None, derandomize=True, phases=NO_EXPLAIN)
# For the mutant sweep: finding a failure is the point, shrinking it costs most of the time.
FIND_ONLY = settings(FAST, max_examples=400, phases=[Phase.generate])

# Mutants whose bug lies outside what the machine exercises, with the reason. The catalogue
# (tests/test_mutants.py) kills them.
OUT_OF_SCOPE: dict[type[Adapter], str] = {
    IgnoresNegotiatedServices: "contexts always negotiate SIGN and SEAL (sealing with integrity "
    "only is a documented/Windows divergence, judged by the catalogue)",
    WrapNoEncryptEncrypts: "fQOP is always 0 (SECQOP_WRAP_NO_ENCRYPT has no public Windows "
    "evidence for NTLM, judged by the catalogue)",
    SignatureAtTokenEnd: "TOKENs are exactly cbMaxSignature (16) bytes: how a package fills a "
    "larger TOKEN is undocumented, judged by the catalogue",
    SignsReadonly: "no bare SECBUFFER_READONLY buffers: whether NTLMv2 signs them is contested "
    "(the seed vs MS-NLMP §3.4.6), judged by the catalogue",
    ReportsWrapNoEncrypt: "the state machine compares statuses and buffers, not pfQOP, which "
    "the byte-API adapters it also drives do not have; judged by the catalogue (qop-out-*)",
}
IN_PROCESS = [m for m in ALL if not m.isolate]  # the others crash or hang the process


def test_reference_conforms() -> None:
    # Strict statuses imply accept/reject agreement, so one run checks both.
    run_conformance_test(ReferenceAdapter, settings=FAST, strict_statuses=True)


@pytest.mark.parametrize("role", ["client", "server"])
def test_reference_conforms_against_itself_as_peer(role: str) -> None:
    run_conformance_test(ReferenceAdapter, settings=settings(FAST, max_examples=25), role=role)


# What the first failure must say, for mutants whose bug shows only one way.
FINDINGS: dict[type[Adapter], str] = {
    AcceptsReplays: r"returned SEC_E_OK, the reference returns SEC_E_OUT_OF_SEQUENCE$",
    # decrypted in place on failure: read-only buffers too, which is how it may show first
    ReleasesPlaintextOnFailure: r"(failed with SEC_E_\w+ but changed buffers \[\d+\]: "
    r"unauthenticated plaintext released|wrote into read-only buffer \d+: \w+ became \w+)$",
}


@pytest.mark.parametrize(
    "mutant", [m for m in IN_PROCESS if m not in OUT_OF_SCOPE], ids=lambda m: m.__name__
)
def test_mutant_fails(mutant: type[Adapter]) -> None:
    with pytest.raises(ConformanceFailure) as info:
        run_conformance_test(mutant, settings=FIND_ONLY)
    first = str(info.value).splitlines()[0]
    print(first)
    assert first.startswith(f"{mutant.name} (alone) does not conform: ")
    assert re.search(FINDINGS.get(mutant, ""), first), first


@pytest.mark.parametrize("mutant", list(OUT_OF_SCOPE), ids=lambda m: m.__name__)
def test_out_of_scope_mutant_survives(mutant: type[Adapter]) -> None:
    run_conformance_test(mutant, settings=settings(FIND_ONLY, max_examples=10))


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
    run_conformance_test(Keyless, settings=settings(FAST, max_examples=20))
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
    run_conformance_test(NoSealing, settings=settings(FAST, max_examples=10))


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
        run_conformance_test(Raises, settings=FIND_ONLY)
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

    # A mutant whose minimal failure is one step: shrinking is quick.
    failed = property_phase(WrongDirectionKey, examples=50, role="server", settings=FAST)
    assert failed["case"] == "properties[server]" and failed["outcome"] == "FAIL"
    text, steps = failed["message"], failed["actual"]["failing_steps"]
    first = text.splitlines()[0]
    assert re.fullmatch(
        r"mutant-wrong-direction-key \(as server\) does not conform: #1 (seal|sign) by the "
        r"server \(seqno \d+\): mutant-wrong-direction-key buffer \d+ holds [0-9a-f]{32}, "
        r"the reference's holds [0-9a-f]{32}",
        first,
    ), first
    assert "state.establish(" in steps and re.search(r"state\.(sign|seal)\(by='server'", steps)
    assert "Minimal failing sequence" in text and "Explanation" not in text
    assert "\n    state.teardown()" in text  # the same steps, indented

    assert property_phase(Raises, examples=5, settings=FIND_ONLY)["outcome"] == "ERROR"
    unsupported = property_phase(NoServer, examples=5, role="server")
    assert unsupported["outcome"] == "UNSUPPORTED" and unsupported["case"] == "properties[server]"


# -- pyspnego: what the machine finds ---------------------------------------------------------

needs_pyspnego = pytest.mark.skipif(
    not PyspnegoAdapter.available().ok, reason=PyspnegoAdapter.available().reason
)


# pyspnego's pure-Python DES makes NTLMv1 handshakes slow: v2 contexts, and no shrinking
# (the first line of the failure names the finding; the steps are then longer).
PYSPNEGO = settings(FAST, phases=[Phase.generate])
V2_ONLY = context_options(variants=("v2",))


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
        run_conformance_test(PyspnegoAdapter, settings=PYSPNEGO, options=V2_ONLY)
    first = str(info.value).splitlines()[0]
    assert re.search(
        r"seal by the \w+ .*pyspnego returned SEC_E_INVALID_TOKEN, the reference "
        r"returns SEC_E_OK$",
        first,
    ), first
    assert "wrap_iov" in info.value.steps


@needs_pyspnego
@pytest.mark.parametrize("role", [None, "client", "server"])
def test_pyspnego_state_runs_ahead_after_a_rejection(role: str | None) -> None:
    # Accept/reject only (the default). After it rejects a tampered, replayed or reordered
    # message, pyspnego has consumed the sequence number and RC4 keystream (MS-NLMP §3.4.4:
    # on a wrong SeqNum "an error MUST be returned ... and SeqNum is not incremented"), so it
    # rejects the genuine next message or accepts a later one out of order.
    with pytest.raises(ConformanceFailure) as info:
        run_conformance_test(PlainPyspnego, settings=PYSPNEGO, role=role, options=V2_ONLY)
    first = str(info.value).splitlines()[0]
    assert re.search(
        r"(receive by the \w+: pyspnego returned SEC_E_MESSAGE_ALTERED, the reference returns "
        r"SEC_E_OK|delivered to the \w+ before .*: pyspnego returned SEC_E_OK, the reference "
        r"returns SEC_E_OUT_OF_SEQUENCE)$",
        first,
    ), first
    rejected = r"(then receive|replayed|delivered to)[^\n]*: SEC_E_MESSAGE_ALTERED"
    assert re.search(rejected, info.value.steps)  # a rejection came first


@needs_pyspnego
def test_pyspnego_statuses_differ_when_strict() -> None:
    # strict_statuses: pyspnego answers every rejection with SEC_E_MESSAGE_ALTERED (its
    # BadMICError), where the reference says SEC_E_OUT_OF_SEQUENCE or SEC_E_INVALID_TOKEN.
    with pytest.raises(ConformanceFailure) as info:
        run_conformance_test(
            PlainPyspnego, settings=PYSPNEGO, strict_statuses=True, options=V2_ONLY
        )
    first = str(info.value).splitlines()[0]
    assert re.search(
        r"pyspnego returned SEC_E_MESSAGE_ALTERED, the reference returns "
        r"SEC_E_(OUT_OF_SEQUENCE|INVALID_TOKEN)$",
        first,
    ), first
