"""The scapy adapter (scapy.layers.ntlm.NTLMSSP, GSS_*Ex calls) against itself, against the
reference in both roles, and over the whole catalogue. Assertions state what scapy 2.8.0 does."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from _baseline_gate import JOBS as ALL_JOBS
from _baseline_gate import gate_exit_code, stale_entries

from harness.adapters.base import (
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    ContextPair,
    Handle,
    handshake,
)
from harness.adapters.reference import ReferenceAdapter
from harness.adapters.scapy_ntlm import (
    HANDLE_TAG,
    STATUS_TABLE,
    ScapyAdapter,
    status_of,
    status_of_gss,
)
from harness.ntlm import messages as m
from harness.ntlm.flags import NegotiateFlags as F
from harness.scenarios import load_catalogue
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECQOP_WRAP_NO_ENCRYPT,
    BufferType,
)
from harness.sspi.constants import SecStatus as S

_AVAILABILITY = ScapyAdapter.available()
if not _AVAILABILITY.ok:
    pytest.skip(_AVAILABILITY.reason, allow_module_level=True)

V2 = ContextOptions()
MESSAGES = [b"", b"x", b"Plaintext" * 3, bytes(range(256)) * 4]


def test_scapy_version() -> None:
    assert importlib.metadata.version("scapy").startswith("2.8.")


def _pair(result: ContextPair | CallResult) -> ContextPair:
    assert isinstance(result, ContextPair), result
    return result


def _msg(text: bytes, *extra: SecBuffer) -> SecBufferDesc:
    """Optional extra buffers, one DATA buffer, then a 16-byte TOKEN."""
    data = SecBuffer.of(BufferType.DATA, text)
    return SecBufferDesc([*extra, data, SecBuffer.of(BufferType.TOKEN, 16)])


def _buf(desc: SecBufferDesc, index: int) -> bytearray:
    data = (desc.buffers or [])[index].data
    assert data is not None
    return data


def _data(desc: SecBufferDesc, index: int = -2) -> bytes:
    return bytes(_buf(desc, index))


# -- handshakes ---------------------------------------------------------------------------------


def test_handshake_with_itself() -> None:
    adapter = ScapyAdapter()
    pair = _pair(adapter.establish(V2))
    assert pair.client.upper == pair.server.upper == HANDLE_TAG
    wanted = F.EXTENDED_SESSIONSECURITY | F.KEY_EXCH | F.SIGN | F.SEAL | F.NEGOTIATE_128
    assert pair.flags & wanted == wanted
    assert pair.exported_session_key is not None and len(pair.exported_session_key) == 16


def test_scapy_client_reference_server_both_ways() -> None:
    """scapy's NTLMv2 response ends with MsvAvEOL: it omits the final Z(4) of MS-NLMP §3.3.2's
    temp ("Final Z(4) is the EOL AvPair", scapy's comment). The reference server verifies
    NTProofStr over the blob as sent, so the handshake succeeds and both directions work."""
    ours, ref = ScapyAdapter(), ReferenceAdapter()
    client, server = ours.client(V2), ref.server(V2)
    _, negotiate = client.step(None)
    _, challenge = server.step(negotiate)
    _, authenticate = client.step(challenge)
    nt = m.decode_authenticate(authenticate).nt_response
    assert nt[-4:] == b"\x00\x00\x00\x00" and nt[-8:-4] != b"\x00\x00\x00\x00"  # EOL, no Z(4)
    assert server.step(authenticate) == (S.SEC_E_OK, b"")
    pair = ContextPair(client.handle, server.handle, client.flags, client.exported_session_key)
    wanted = F.EXTENDED_SESSIONSECURITY | F.KEY_EXCH | F.SIGN | F.SEAL | F.NEGOTIATE_128
    assert pair.flags & wanted == wanted
    for text in MESSAGES:
        desc = _msg(text)
        assert ours.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
        assert ref.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK
        desc = _msg(text)
        assert ref.make_signature(pair.server, 0, desc, 0).status == S.SEC_E_OK
        assert ours.verify_signature(pair.client, desc, 0).status == S.SEC_E_OK
        desc = _msg(text)
        assert ours.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
        assert ref.decrypt_message(pair.server, desc, 0).status == S.SEC_E_OK
        assert _data(desc) == text
        desc = _msg(text)
        assert ref.encrypt_message(pair.server, 0, desc, 0).status == S.SEC_E_OK
        assert ours.decrypt_message(pair.client, desc, 0).status == S.SEC_E_OK
        assert _data(desc) == text
    tampered = _msg(b"pay 100 to alice")
    assert ours.make_signature(pair.client, 0, tampered, 0).status == S.SEC_E_OK
    _buf(tampered, 0)[4] ^= 1
    assert ref.verify_signature(pair.server, tampered, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_scapy_client_exchanges_a_key_without_sign_or_seal() -> None:
    """KEY_EXCH without SIGN/SEAL: MS-NLMP §3.1.5.1.2 sends no EncryptedRandomSessionKey and
    keys the MIC with KeyExchangeKey; scapy's client exchanges a random key whenever the
    CHALLENGE has KEY_EXCH, so the reference server (which follows the spec) rejects the MIC."""
    options = ContextOptions(integrity=False, confidentiality=False)
    client, server = ScapyAdapter().client(options), ReferenceAdapter().server(options)
    _, negotiate = client.step(None)
    _, challenge = server.step(negotiate)
    _, authenticate = client.step(challenge)
    message = m.decode_authenticate(authenticate)
    assert message.flags & F.KEY_EXCH and not message.flags & (F.SIGN | F.SEAL)
    assert len(message.encrypted_session_key) == 16
    assert server.step(authenticate) == (S.SEC_E_MESSAGE_ALTERED, b"")
    assert server.detail == "MIC does not match"


def test_reference_client_scapy_server_both_ways() -> None:
    ours, ref = ScapyAdapter(), ReferenceAdapter()
    pair = _pair(handshake(ref.client(V2), ours.server(V2)))
    for text in MESSAGES:
        desc = _msg(text)
        assert ref.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
        assert ours.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK
        desc = _msg(text)
        assert ours.make_signature(pair.server, 0, desc, 0).status == S.SEC_E_OK
        assert ref.verify_signature(pair.client, desc, 0).status == S.SEC_E_OK
        desc = _msg(text)
        assert ref.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
        assert ours.decrypt_message(pair.server, desc, 0).status == S.SEC_E_OK
        assert _data(desc) == text
        desc = _msg(text)
        assert ours.encrypt_message(pair.server, 0, desc, 0).status == S.SEC_E_OK
        assert ref.decrypt_message(pair.client, desc, 0).status == S.SEC_E_OK
        assert _data(desc) == text


def test_bad_credentials_at_the_scapy_server() -> None:
    ours, ref = ScapyAdapter(), ReferenceAdapter()
    # a wrong password fails the AUTHENTICATE MIC before the NTProofStr is checked
    server = ours.server(V2)
    result = handshake(ref.client(ContextOptions(password="wrong")), server)
    assert isinstance(result, CallResult) and result.status == S.SEC_E_MESSAGE_ALTERED
    assert result.detail == "server failed at handshake leg 4: scapy GSS_S_BAD_SIG"
    server = ours.server(V2)
    result = handshake(ref.client(ContextOptions(user="nobody")), server)
    assert isinstance(result, CallResult) and result.status == S.SEC_E_LOGON_DENIED
    assert result.detail.endswith(": scapy GSS_S_DEFECTIVE_CREDENTIAL")


def test_wrong_password_without_mic_gets_no_status_from_scapy() -> None:
    """impacket's NTLMv2 client sends no MIC: scapy's GSS_Accept_sec_context then reaches
    _checkLogin, which fails, and falls off its end returning None."""
    impacket_ntlm = pytest.importorskip("harness.adapters.impacket_ntlm")
    if not impacket_ntlm.ImpacketAdapter.available().ok:
        pytest.skip("impacket unavailable")
    server = ScapyAdapter().server(V2)
    client = impacket_ntlm.ImpacketAdapter().client(ContextOptions(password="wrong"))
    result = handshake(client, server)
    assert isinstance(result, CallResult) and result.status == S.SEC_E_INTERNAL_ERROR
    assert result.detail.endswith(": scapy GSS_Accept_sec_context -> None")


def test_mismatched_key_exchange_breaks_scapys_own_handshake() -> None:
    """NTLM_VALUES["NegotiateFlags"] without KEY_EXCH reaches the AUTHENTICATE flags, but
    scapy's client still exchanges a key because its own server's CHALLENGE offers KEY_EXCH;
    the server trusts the AUTHENTICATE flags, derives another key and rejects the MIC."""
    result = ScapyAdapter().establish(ContextOptions(key_exchange=False))
    assert isinstance(result, CallResult) and result.status == S.SEC_E_MESSAGE_ALTERED
    assert result.detail.endswith("scapy GSS_S_BAD_SIG")


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (ContextOptions(ntlm_version="v1-ess"), "NTLMv2 with ESS only"),
        (ContextOptions(ntlm_version="v1"), "NTLMv2 with ESS only"),
        (ContextOptions(datagram=True), "datagram"),
        (ContextOptions(lm_key=True), "LM_KEY"),
    ],
)
def test_options_scapy_cannot_do_raise(options: ContextOptions, reason: str) -> None:
    with pytest.raises(CannotExpress, match=reason):
        ScapyAdapter().client(options)


def test_key_size_is_requested_through_ntlm_values() -> None:
    adapter = ScapyAdapter()
    pair = _pair(adapter.establish(ContextOptions(key_bits=56)))
    assert pair.flags & F.NEGOTIATE_56 and not pair.flags & F.NEGOTIATE_128
    desc = _msg(b"56-bit")
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert adapter.decrypt_message(pair.server, desc, 0).status == S.SEC_E_OK


# -- messages ------------------------------------------------------------------------------------


def test_self_pair_output_matches_the_reference_mirror() -> None:
    adapter, ref = ScapyAdapter(), ReferenceAdapter()
    pair = _pair(adapter.establish(V2))
    key = pair.exported_session_key or b""
    mirror = ref.from_session_key(pair.flags, key, client=True)
    for text in MESSAGES:
        ours, theirs = _msg(text), _msg(text)
        assert adapter.encrypt_message(pair.client, 0, ours, 0).status == S.SEC_E_OK
        assert ref.encrypt_message(mirror, 0, theirs, 0).status == S.SEC_E_OK
        assert ours.buffers == theirs.buffers
        assert adapter.decrypt_message(pair.server, ours, 0).status == S.SEC_E_OK
        assert _data(ours) == text


def test_tampering_is_detected_except_the_version_field() -> None:
    adapter = ScapyAdapter()
    pair = _pair(adapter.establish(V2))
    desc = _msg(b"pay 100 to alice")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    altered = desc.copy()
    _buf(altered, 0)[4] ^= 1
    result = adapter.verify_signature(pair.server, altered, 0)
    assert result.status == S.SEC_E_MESSAGE_ALTERED and "Checksums don't match" in result.detail
    desc = _msg(b"versioned")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    _buf(desc, -1)[0] ^= 2  # GSS_VerifyMICEx compares only the Checksum field
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK
    desc = _msg(b"short")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    del _buf(desc, -1)[15:]
    result = adapter.verify_signature(pair.server, desc, 0)
    assert result.status == S.SEC_E_INVALID_TOKEN and "struct.error" not in result.detail


def test_failed_unwrap_releases_plaintext_and_consumes_keystream() -> None:
    """GSS_UnwrapEx decrypts the caller's WRAP_MSGs before checking the signature."""
    adapter = ScapyAdapter()
    pair = _pair(adapter.establish(V2))
    desc = _msg(b"secret")
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    genuine = desc.copy()
    _buf(desc, 1)[9] ^= 1
    assert adapter.decrypt_message(pair.server, desc, 0).status == S.SEC_E_MESSAGE_ALTERED
    assert _data(desc) == b"secret"
    assert adapter.decrypt_message(pair.server, genuine, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_replay_and_reorder_are_altered_not_out_of_sequence() -> None:
    """GSS_VerifyMICEx takes the sequence number from the signature itself; only the RC4
    keystream position makes a replayed or reordered signature fail."""
    adapter = ScapyAdapter()
    pair = _pair(adapter.establish(V2))
    first, second = _msg(b"first"), _msg(b"second")
    assert adapter.make_signature(pair.client, 0, first, 0).status == S.SEC_E_OK
    assert adapter.make_signature(pair.client, 0, second, 0).status == S.SEC_E_OK
    replay = first.copy()
    assert adapter.verify_signature(pair.server, first, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, replay, 0).status == S.SEC_E_MESSAGE_ALTERED
    pair = _pair(adapter.establish(V2))
    first, second = _msg(b"first"), _msg(b"second")
    assert adapter.make_signature(pair.client, 0, first, 0).status == S.SEC_E_OK
    assert adapter.make_signature(pair.client, 0, second, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, second, 0).status == S.SEC_E_MESSAGE_ALTERED


@pytest.mark.parametrize(
    ("flags", "signed"), [(SECBUFFER_READONLY, False), (SECBUFFER_READONLY_WITH_CHECKSUM, True)]
)
def test_readonly_attributes_through_sign_and_conf_req_flags(flags: int, signed: bool) -> None:
    """Checked by the reference client: MIC_MSG(sign=...) and WRAP_MSG(conf_req_flag, sign)."""
    ours, ref = ScapyAdapter(), ReferenceAdapter()
    pair = _pair(handshake(ref.client(V2), ours.server(V2)))
    altered = S.SEC_E_MESSAGE_ALTERED if signed else S.SEC_E_OK
    desc = _msg(b"body", SecBuffer.of(BufferType.DATA, b"hdr", flags))
    assert ours.make_signature(pair.server, 0, desc, 0).status == S.SEC_E_OK
    forged = desc.copy()
    _buf(forged, 0)[:] = b"HDR"
    assert ref.verify_signature(pair.client, forged, 0).status == altered
    if signed:
        assert ref.verify_signature(pair.client, desc, 0).status == S.SEC_E_OK
    desc = _msg(b"body", SecBuffer.of(BufferType.DATA, b"hdr", flags))
    assert ours.encrypt_message(pair.server, 0, desc, 0).status == S.SEC_E_OK
    assert _data(desc, 0) == b"hdr" and _data(desc) != b"body"
    forged = desc.copy()
    _buf(forged, 0)[:] = b"HDR"
    assert ref.decrypt_message(pair.client, forged, 0).status == altered
    if signed:
        assert ref.decrypt_message(pair.client, desc, 0).status == S.SEC_E_OK
        assert _data(desc) == b"body"


def test_no_integrity_or_confidentiality_is_not_enforced() -> None:
    adapter = ScapyAdapter()
    pair = _pair(adapter.establish(ContextOptions(integrity=False, confidentiality=False)))
    assert not pair.flags & (F.SIGN | F.SEAL) and pair.flags & F.KEY_EXCH
    desc = _msg(b"unsigned context")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert _data(desc, -1)[4:12] != bytes(8)  # a real MAC, not Windows' fixed signature
    pair = _pair(adapter.establish(ContextOptions(confidentiality=False)))
    assert not pair.flags & F.SEAL
    desc = _msg(b"sealed anyway")
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert _data(desc) != b"sealed anyway"


def test_wrap_no_encrypt_and_empty_wraps() -> None:
    adapter = ScapyAdapter()
    pair = _pair(adapter.establish(V2))
    desc = _msg(b"clear")
    assert adapter.encrypt_message(pair.client, SECQOP_WRAP_NO_ENCRYPT, desc, 0).status == 0
    assert _data(desc) == b"clear"
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK
    only_token = SecBufferDesc([SecBuffer.of(BufferType.TOKEN, 16)])
    assert adapter.encrypt_message(pair.client, 0, only_token, 0).status == S.SEC_E_OK


def test_handles_sizes_and_what_cannot_be_expressed() -> None:
    adapter = ScapyAdapter()
    pair = _pair(adapter.establish(V2))
    with pytest.raises(CannotExpress, match="only MaximumSignatureLength"):
        adapter.query_sizes(pair.client)
    with pytest.raises(CannotExpress, match="TOKEN"):
        adapter.make_signature(pair.client, 0, SecBufferDesc([SecBuffer.of(1, b"x")]), 0)
    with pytest.raises(CannotExpress, match="TOKEN"):
        adapter.decrypt_message(pair.client, SecBufferDesc([SecBuffer.of(1, b"x")]), 0)
    assert adapter.delete_context(pair.client).status == S.SEC_E_OK
    assert adapter.delete_context(pair.client).status == S.SEC_E_INVALID_HANDLE
    assert adapter.make_signature(pair.client, 0, _msg(b"x"), 0).status == S.SEC_E_INVALID_HANDLE
    with pytest.raises(CannotExpress):  # no such call, whatever the handle
        adapter.query_sizes(Handle.GARBAGE)


def test_status_table() -> None:
    from scapy.layers import gssapi

    gss_names = [k for k in STATUS_TABLE if k.startswith("GSS_S_")]
    assert all(isinstance(getattr(gssapi, name), int) for name in gss_names)
    assert status_of_gss(gssapi.GSS_S_BAD_MIC).status == S.SEC_E_MESSAGE_ALTERED
    assert status_of_gss(gssapi.GSS_S_COMPLETE).status == S.SEC_E_OK
    assert status_of_gss(0x7777).status == S.SEC_E_INTERNAL_ERROR
    assert status_of("GSS_VerifyMICEx", ValueError("x")).status == S.SEC_E_MESSAGE_ALTERED
    assert status_of("GSS_GetMICEx", ValueError("x")).status == S.SEC_E_INTERNAL_ERROR
    assert status_of("GSS_GetMICEx", ValueError("x")).detail == "scapy GSS_GetMICEx: ValueError: x"


# -- the catalogue, gated on the reviewed baseline ------------------------------------------------

# Every failing case of the catalogue (alone, and against the reference in each role) is listed in
# tests/baselines/scapy.json with its outcome and the reason scapy behaves so. The run passes the
# gate only if the failures are exactly those: a new failure is a regression, and a listed case
# that now passes is an unexpected pass, so a fixed bug forces the baseline (and its reason) to be
# updated. UNSUPPORTED and NON_STRICT cases are not failures and are not listed.
JOBS = ALL_JOBS


@pytest.mark.parametrize("jobs", JOBS)
def test_catalogue_matches_the_baseline(
    jobs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate_exit_code("scapy", jobs, tmp_path) == 0, capsys.readouterr().err


def test_baseline_names_real_cases() -> None:
    """Every baseline entry matches some job of the catalogue (none is left over)."""
    assert stale_entries("scapy", ScapyAdapter) == []


def test_unsupported_cases_are_what_scapy_lacks() -> None:
    lacking = Capability(0)
    for case in load_catalogue():
        lacking |= case.needs & ~ScapyAdapter.capabilities
    assert lacking == (
        Capability.SIZES
        | Capability.BAD_HANDLES
        | Capability.NTLMV1
        | Capability.NTLMV1_NO_ESS
        | Capability.DATAGRAM
        | Capability.RAW_DESCRIPTORS
        | Capability.QOP_OUT
    )
