"""The impacket adapter (impacket.ntlm's client with rpcrt.py's session security) against the
reference, and over the whole catalogue. Assertions state what impacket 0.13.1 really does.

impacket has no NTLM server that can be driven token by token, so the server side of every
handshake here is the reference (``ImpacketAdapter.establish`` does the same).
"""

from __future__ import annotations

import importlib.metadata
import struct
from pathlib import Path

import pytest
from _baseline_gate import JOBS as ALL_JOBS
from _baseline_gate import baseline_path, gate_exit_code, stale_entries

from harness.adapters.base import (
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    ContextPair,
    Handle,
    handshake,
)
from harness.adapters.impacket_ntlm import (
    HANDLE_TAG,
    STATUS_BY_EXCEPTION,
    ImpacketAdapter,
    status_of,
)
from harness.adapters.reference import ReferenceAdapter
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.keys import sealkey
from harness.report.baseline import gate, load_baseline
from harness.runner.executor import execute
from harness.scenarios import load_catalogue
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECQOP_WRAP_NO_ENCRYPT,
    BufferType,
)
from harness.sspi.constants import SecStatus as S
from harness.vectors.check import check_file

_AVAILABILITY = ImpacketAdapter.available()
if not _AVAILABILITY.ok:
    pytest.skip(_AVAILABILITY.reason, allow_module_level=True)

V1_ESS = ContextOptions(ntlm_version="v1-ess")
V2 = ContextOptions()
NONE_ASKED = ContextOptions(
    ntlm_version="v1-ess", integrity=False, confidentiality=False, key_exchange=False
)
VECTORS = Path(__file__).resolve().parents[1] / "vectors"
# impacket's AV_PAIRS lookup: computeResponseNTLMv2 indexes MsvAvDnsComputerName, which a
# CHALLENGE need not carry (MS-NLMP §2.2.2.1 makes only MsvAvNbComputerName/NbDomainName/EOL
# mandatory). The reference server sends it like Windows does; ReferenceAdapter(dns_domain=None)
# leaves it out, as a server that is not domain-joined may. Known upstream:
# fortra/impacket pull request #2197 ("Fix on av_pairs[NTLMSSP_AV_DNS_HOSTNAME][1] ...").
AV_PAIR_CRASH = "'NoneType' object is not subscriptable"


def test_impacket_version() -> None:
    assert importlib.metadata.version("impacket").startswith("0.13.")


def _pair(result: ContextPair | CallResult) -> ContextPair:
    assert isinstance(result, ContextPair), result
    return result


def _msg(text: bytes, *extra: SecBuffer, token: int = 16) -> SecBufferDesc:
    """Optional extra buffers, one DATA buffer, then the TOKEN."""
    data = SecBuffer.of(BufferType.DATA, text)
    return SecBufferDesc([*extra, data, SecBuffer.of(BufferType.TOKEN, token)])


def _buf(desc: SecBufferDesc, index: int) -> bytearray:
    data = (desc.buffers or [])[index].data
    assert data is not None
    return data


def _data(desc: SecBufferDesc, index: int = -2) -> bytes:
    return bytes(_buf(desc, index))


# -- handshakes ---------------------------------------------------------------------------------


def test_establish_v1_ess_is_an_impacket_client_and_a_reference_server() -> None:
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    assert pair.client.upper == HANDLE_TAG and pair.server.upper != HANDLE_TAG
    wanted = F.EXTENDED_SESSIONSECURITY | F.KEY_EXCH | F.SIGN | F.SEAL | F.NEGOTIATE_128
    assert pair.flags & wanted == wanted
    assert pair.exported_session_key is not None and len(pair.exported_session_key) == 16


def test_ntlmv2_client_crashes_on_a_challenge_without_dns_computer_name() -> None:
    # MsvAvDnsComputerName is optional (MS-NLMP §2.2.2.1; the §4.2.4 example has none).
    without_dns = ReferenceAdapter(dns_domain=None)
    result = handshake(ImpacketAdapter().client(V2), without_dns.server(V2))
    assert isinstance(result, CallResult)
    assert result.status == S.SEC_E_INTERNAL_ERROR
    assert "client failed at handshake leg 3" in result.detail and AV_PAIR_CRASH in result.detail


def test_handshake_with_reference_server_in_the_client_role() -> None:
    ours, ref = ImpacketAdapter(), ReferenceAdapter()
    pair = _pair(handshake(ours.client(V1_ESS), ref.server(V1_ESS)))
    # the reference recovers the same exported session key from impacket's AUTHENTICATE
    mirror = ref.from_session_key(pair.flags, pair.exported_session_key or b"", client=True)
    desc, copy = _msg(b"same bytes"), _msg(b"same bytes")
    assert ours.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert ref.make_signature(mirror, 0, copy, 0).status == S.SEC_E_OK
    assert desc.buffers == copy.buffers  # byte-identical to the reference's signature
    assert ref.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK
    assert isinstance(handshake(ours.client(V2), ref.server(V2)), ContextPair)
    v2 = handshake(ours.client(V2), ReferenceAdapter(dns_domain=None).server(V2))
    assert isinstance(v2, CallResult) and v2.status == S.SEC_E_INTERNAL_ERROR
    assert v2.detail == f"client failed at handshake leg 3: impacket TypeError: {AV_PAIR_CRASH}"


def test_ntlmv2_with_the_reference_server_both_ways() -> None:
    """With the DNS AV pairs in the CHALLENGE (the reference's default) NTLMv2 works."""
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V2))
    assert pair.flags & F.EXTENDED_SESSIONSECURITY and pair.flags & F.KEY_EXCH
    desc = _msg(b"v2 to the reference")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK  # reference
    desc = _msg(b"v2 sealed reply")
    assert adapter.encrypt_message(pair.server, 0, desc, 0).status == S.SEC_E_OK  # reference
    assert adapter.decrypt_message(pair.client, desc, 0).status == S.SEC_E_OK
    assert _data(desc) == b"v2 sealed reply"
    tampered = _msg(b"v2 tampered")
    assert adapter.encrypt_message(pair.client, 0, tampered, 0).status == S.SEC_E_OK
    _buf(tampered, 0)[0] ^= 1
    assert adapter.decrypt_message(pair.server, tampered, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_ntlmv2_client_works_against_a_server_that_sends_the_dns_name() -> None:
    """The crash is only the missing AV pair: scapy's server sends MsvAvDnsComputerName."""
    scapy_ntlm = pytest.importorskip("harness.adapters.scapy_ntlm")
    if not scapy_ntlm.ScapyAdapter.available().ok:
        pytest.skip("scapy unavailable")
    ours, theirs = ImpacketAdapter(), scapy_ntlm.ScapyAdapter()
    pair = _pair(handshake(ours.client(V2), theirs.server(V2)))
    desc = _msg(b"v2 both ways")
    assert ours.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert theirs.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK
    desc = _msg(b"sealed reply")
    assert theirs.encrypt_message(pair.server, 0, desc, 0).status == S.SEC_E_OK
    assert ours.decrypt_message(pair.client, desc, 0).status == S.SEC_E_OK
    assert _data(desc) == b"sealed reply"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (ContextOptions(ntlm_version="v1"), "always asks for ESS"),
        (ContextOptions(key_bits=56), "56-bit keys"),
        (ContextOptions(datagram=True), "datagram"),
        (ContextOptions(lm_key=True), "LM_KEY"),
        (ContextOptions(confidentiality=False), "on or off together"),
        (ContextOptions(integrity=False, confidentiality=False), "on or off together"),
    ],
)
def test_options_impacket_cannot_request_raise(options: ContextOptions, reason: str) -> None:
    with pytest.raises(CannotExpress, match=reason):
        ImpacketAdapter().client(options)


def test_without_signing_impacket_still_signs() -> None:
    """signingRequired=False drops SIGN/SEAL/KEY_EXCH; impacket's SIGN never looks at them."""
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(NONE_ASKED))
    assert not pair.flags & (F.SIGN | F.SEAL | F.KEY_EXCH)
    desc = _msg(b"unsigned context")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert _data(desc, -1)[:4] == b"\x01\x00\x00\x00" and _data(desc, -1)[4:12] != bytes(8)


# -- messages with the reference server ----------------------------------------------------------


def test_sign_verify_and_seal_unseal_both_ways() -> None:
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    for n, text in enumerate([b"", b"x", b"Plaintext" * 3, bytes(range(256)) * 4]):
        desc = _msg(text)
        assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
        assert _data(desc, -1)[12:] == (2 * n).to_bytes(4, "little")  # impacket's SeqNum
        assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK  # reference
        desc = _msg(text)
        assert adapter.make_signature(pair.server, 0, desc, 0).status == S.SEC_E_OK
        assert adapter.verify_signature(pair.client, desc, 0).status == S.SEC_E_OK
        desc = _msg(text)
        assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
        assert adapter.decrypt_message(pair.server, desc, 0).status == S.SEC_E_OK
        assert _data(desc) == text
        desc = _msg(text)
        assert adapter.encrypt_message(pair.server, 0, desc, 0).status == S.SEC_E_OK
        assert adapter.decrypt_message(pair.client, desc, 0).status == S.SEC_E_OK
        assert _data(desc) == text


def test_tampered_messages_are_rejected_by_the_comparison() -> None:
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    desc = _msg(b"pay 100 to alice")
    assert adapter.make_signature(pair.server, 0, desc, 0).status == S.SEC_E_OK
    _buf(desc, 0)[4] ^= 1
    result = adapter.verify_signature(pair.client, desc, 0)
    assert result.status == S.SEC_E_MESSAGE_ALTERED and "impacket computes" in result.detail
    desc = _msg(b"do not alter")
    assert adapter.encrypt_message(pair.server, 0, desc, 0).status == S.SEC_E_OK
    sealed = _data(desc)
    _buf(desc, 0)[0] ^= 0x20
    assert adapter.decrypt_message(pair.client, desc, 0).status == S.SEC_E_MESSAGE_ALTERED
    assert _data(desc) != b"do not alter" and _data(desc)[1:] == sealed[1:]  # no plaintext out


def test_a_rejected_message_consumes_the_receive_state() -> None:
    """rpcrt-style: the ARC4 handle and the counter move on every received message, so after
    a rejected message the genuine one fails too."""
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    desc = _msg(b"genuine")
    assert adapter.encrypt_message(pair.server, 0, desc, 0).status == S.SEC_E_OK
    bad = desc.copy()
    _buf(bad, 1)[9] ^= 1
    assert adapter.decrypt_message(pair.client, bad, 0).status == S.SEC_E_MESSAGE_ALTERED
    assert adapter.decrypt_message(pair.client, desc, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_a_replay_is_altered_not_out_of_sequence() -> None:
    """A byte comparison cannot tell a replay from an alteration."""
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    signed = _msg(b"once")
    assert adapter.make_signature(pair.server, 0, signed, 0).status == S.SEC_E_OK
    replay = signed.copy()
    assert adapter.verify_signature(pair.client, signed, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.client, replay, 0).status == S.SEC_E_MESSAGE_ALTERED


@pytest.mark.parametrize(
    ("flags", "header_signed"),
    [(SECBUFFER_READONLY_WITH_CHECKSUM, True), (SECBUFFER_READONLY, False)],
)
def test_readonly_headers_through_seals_two_messages(flags: int, header_signed: bool) -> None:
    """ntlm.SEAL(messageToSign, messageToEncrypt): READONLY_WITH_CHECKSUM is signed in clear,
    READONLY is neither signed nor encrypted; the reference server checks both."""
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    header = SecBuffer.of(BufferType.DATA, b"HDR", flags)
    desc = _msg(b"payload", header)
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert _data(desc, 0) == b"HDR" and _data(desc) != b"payload"
    forged = desc.copy()
    _buf(forged, 0)[:] = b"XXX"
    expected = S.SEC_E_MESSAGE_ALTERED if header_signed else S.SEC_E_OK
    assert adapter.decrypt_message(pair.server, forged, 0).status == expected
    if header_signed:  # the reference did not advance: the genuine message still opens
        assert adapter.decrypt_message(pair.server, desc, 0).status == S.SEC_E_OK
        assert _data(desc) == b"payload"


def test_wrap_no_encrypt_is_sign_only() -> None:
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    desc = _msg(b"clear text")
    assert adapter.encrypt_message(pair.client, SECQOP_WRAP_NO_ENCRYPT, desc, 0).status == 0
    assert _data(desc) == b"clear text"
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK


def test_what_impacket_cannot_express_raises() -> None:
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    ro = _msg(b"body", SecBuffer.of(BufferType.DATA, b"hdr", SECBUFFER_READONLY))
    with pytest.raises(CannotExpress, match="ntlm.SIGN takes one message"):
        adapter.make_signature(pair.client, 0, ro, 0)
    no_token = SecBufferDesc([SecBuffer.of(BufferType.DATA, b"x")])
    with pytest.raises(CannotExpress, match="TOKEN"):
        adapter.make_signature(pair.client, 0, no_token, 0)
    with pytest.raises(CannotExpress, match="TOKEN"):
        adapter.encrypt_message(pair.client, 0, _msg(b"x", token=8), 0)
    with pytest.raises(CannotExpress, match="TOKEN"):
        adapter.verify_signature(pair.client, no_token, 0)
    # nothing was consumed by the refused calls: the next message still verifies
    desc = _msg(b"after")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK


def test_handles_sizes_and_status_table() -> None:
    adapter = ImpacketAdapter()
    pair = _pair(adapter.establish(V1_ESS))
    with pytest.raises(CannotExpress, match=r"no QueryContextAttributes\(SECPKG_ATTR_SIZES\)"):
        adapter.query_sizes(pair.client)
    assert adapter.query_sizes(pair.server)[0].status == S.SEC_E_OK  # the reference's context
    assert adapter.delete_context(pair.client).status == S.SEC_E_OK
    assert adapter.delete_context(pair.client).status == S.SEC_E_INVALID_HANDLE
    gone = adapter.make_signature(pair.client, 0, _msg(b"x"), 0)
    assert gone.status == S.SEC_E_INVALID_HANDLE and "handle table" in gone.detail
    assert adapter.make_signature(Handle(7, HANDLE_TAG), 0, _msg(b"x"), 0).status == (
        S.SEC_E_INVALID_HANDLE
    )
    assert status_of(TypeError("t")).status == S.SEC_E_INTERNAL_ERROR
    assert status_of(struct.error("s")).status == S.SEC_E_INVALID_TOKEN
    assert status_of(KeyError("k")).detail == "impacket KeyError: 'k'"
    assert set(STATUS_BY_EXCEPTION) == {"TypeError", "struct.error", "Exception"}
    assert not Capability.SERVER & ImpacketAdapter.capabilities


# -- session keys and vectors --------------------------------------------------------------------


def test_seal_vectors_pass_with_rpcrt_key_setup() -> None:
    results = check_file(VECTORS / "ntlm_seal_test.json", ImpacketAdapter())
    assert results and {r.outcome for r in results} == {"PASS"}


def test_impacket_sealkey_weakens_the_key_without_ess() -> None:
    """ntlm.SEALKEY cuts a non-ESS key to 56 bits even without LM_KEY or DATAGRAM, where
    MS-NLMP §3.4.5.3 uses the whole exported key; rpcrt.py (and so the adapter) never calls
    SEALKEY without ESS, which is why the §4.2.2.4 vector passes above."""
    from impacket import ntlm

    flags = int(F.NTLM | F.SIGN | F.SEAL | F.NEGOTIATE_128 | F.NEGOTIATE_56 | F.KEY_EXCH)
    key = bytes.fromhex("55555555555555555555555555555555")
    assert ntlm.SEALKEY(flags, key) == key[:7] + b"\xa0"
    assert sealkey(flags, key, client_to_server=True) == key


# -- the catalogue, gated on the reviewed baseline ------------------------------------------------

# Every failing case of the catalogue (alone, which pairs impacket's client with a reference
# server, and against the reference as the client) is listed in tests/baselines/impacket.json with
# its outcome and the reason impacket behaves so. The run passes the gate only if the failures are
# exactly those: a new failure is a regression, and a listed case that now passes is an unexpected
# pass, so a fixed bug forces the baseline (and its reason) to be updated. UNSUPPORTED and
# NON_STRICT cases are not failures and are not listed.
BASELINE = baseline_path("impacket")
JOBS = {k: v for k, v in ALL_JOBS.items() if k != "as-server"}


@pytest.mark.parametrize("jobs", JOBS)
def test_catalogue_matches_the_baseline(
    jobs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate_exit_code("impacket", jobs, tmp_path) == 0, capsys.readouterr().err


def test_baseline_names_real_cases() -> None:
    """Every baseline entry matches some job of the catalogue (none is left over)."""
    assert stale_entries("impacket", ImpacketAdapter) == []


def test_catalogue_against_a_server_without_dns_names() -> None:
    """Against ReferenceAdapter(dns_domain=None) every NTLMv2 case that reaches the handshake
    stops there: impacket's NTLMv2 client raises TypeError on the CHALLENGE without
    MsvAvDnsComputerName (AV_PAIR_CRASH), reported as SEC_E_INTERNAL_ERROR. NTLMv1 does not look
    at the AV pairs, so the v1-ess cases end as against the default reference server: exactly
    the baseline's @as-client outcomes."""
    crashed, records = [], []
    for case in load_catalogue():
        if case.needs & ~ImpacketAdapter.capabilities:
            continue  # the runner reports these UNSUPPORTED
        peer = ReferenceAdapter(dns_domain=None)
        result = execute(ImpacketAdapter(), case, peer=peer, role="client")
        if case.variant != "ntlmv2":
            records.append(
                {"adapter": "impacket", "case": f"{case.id}@as-client", "outcome": result.outcome}
            )
        elif result.outcome != "UNSUPPORTED":  # CannotExpress comes before any handshake
            assert result.outcome == "FAIL", (case.id, result.message)
            assert result.message.startswith("establish failed with SEC_E_INTERNAL_ERROR: client")
            assert result.message.endswith(f"impacket TypeError: {AV_PAIR_CRASH}"), case.id
            crashed.append(case.id)
    assert crashed and records
    verdict = gate(records, load_baseline(BASELINE))
    assert verdict.ok, verdict.lines()


def test_unsupported_cases_are_what_impacket_lacks() -> None:
    missing = {
        c.id: c.needs & ~ImpacketAdapter.capabilities
        for c in load_catalogue()
        if c.needs & ~ImpacketAdapter.capabilities
    }
    lacking = Capability(0)
    for value in missing.values():
        lacking |= value
    assert lacking == (
        Capability.SIZES
        | Capability.BAD_HANDLES
        | Capability.SIGN_READONLY
        | Capability.NTLMV1_NO_ESS
        | Capability.DATAGRAM
        | Capability.RAW_DESCRIPTORS
        | Capability.QOP_OUT
    )
