"""The gssapi adapter (gss-ntlmssp through python-gssapi) against itself, against the reference
in both roles, and over the whole catalogue. Assertions state what gss-ntlmssp 1.2.0 (Debian
12, MIT krb5 1.20.1 mechglue, python-gssapi 1.12.0) really does."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _baseline_gate import JOBS as ALL_JOBS
from _baseline_gate import gate_exit_code, stale_entries

from harness.adapters.base import (
    AdapterError,
    CallResult,
    CannotExpress,
    ContextOptions,
    ContextPair,
    Handle,
    handshake,
)
from harness.adapters.gss import (
    GSS_S_BAD_SIG,
    GSS_S_CALL_INACCESSIBLE_READ,
    GSS_S_DUPLICATE_TOKEN,
    GSS_S_FAILURE,
    GSS_S_GAP_TOKEN,
    GSS_S_NO_CONTEXT,
    GssapiAdapter,
    map_gss_status,
)
from harness.adapters.reference import ReferenceAdapter, requested_flags
from harness.ntlm import messages as m
from harness.runner.executor import execute
from harness.runner.worker import isolated
from harness.scenarios import load_catalogue
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import SECBUFFER_READONLY, SECQOP_WRAP_NO_ENCRYPT, BufferType
from harness.sspi.constants import SecStatus as S

_AVAILABILITY = GssapiAdapter.available()
if not _AVAILABILITY.ok:
    pytest.skip(_AVAILABILITY.reason, allow_module_level=True)

VERSIONS = ["v2", "v1-ess", "v1"]
V2 = ContextOptions()


@pytest.fixture
def adapter() -> Iterator[GssapiAdapter]:
    instance = GssapiAdapter()
    yield instance
    instance.close()


def _pair(result: ContextPair | CallResult) -> ContextPair:
    assert isinstance(result, ContextPair), result
    return result


def _sign_desc(text: bytes, token: int = 16) -> SecBufferDesc:
    return SecBufferDesc(
        [SecBuffer.of(BufferType.DATA, text), SecBuffer.of(BufferType.TOKEN, token)]
    )


def _copy(desc: SecBufferDesc) -> SecBufferDesc:
    return desc.copy()


def _buf(desc: SecBufferDesc, index: int) -> bytearray:
    """The bytes of buffer ``index``, to read or to tamper with in place."""
    assert desc.buffers is not None
    data = desc.buffers[index].data
    assert data is not None
    return data


def test_module_imports_without_loading_gssapi() -> None:
    code = "import sys, harness.adapters.gss; assert 'gssapi' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_status_table() -> None:
    assert map_gss_status(GSS_S_BAD_SIG, 100005) == S.SEC_E_MESSAGE_ALTERED
    # the mechglue on a deleted/zero context: a calling error plus GSS_S_NO_CONTEXT
    assert map_gss_status(GSS_S_CALL_INACCESSIBLE_READ | GSS_S_NO_CONTEXT, 0) == (
        S.SEC_E_INVALID_HANDLE
    )
    assert map_gss_status(GSS_S_CALL_INACCESSIBLE_READ, 0) == S.SEC_E_INVALID_PARAMETER
    assert map_gss_status(GSS_S_FAILURE, 12) == S.SEC_E_INSUFFICIENT_MEMORY  # ENOMEM
    assert map_gss_status(GSS_S_FAILURE, 22) == S.SEC_E_INTERNAL_ERROR
    assert map_gss_status(GSS_S_DUPLICATE_TOKEN, 0) == S.SEC_E_OUT_OF_SEQUENCE
    assert map_gss_status(GSS_S_GAP_TOKEN, 0) == S.SEC_E_OUT_OF_SEQUENCE
    assert map_gss_status(0x00FF0000, 0) == S.SEC_E_INTERNAL_ERROR  # unknown routine error


@pytest.mark.parametrize("version", VERSIONS)
def test_handshake_with_itself(adapter: GssapiAdapter, version: str) -> None:
    pair = _pair(adapter.establish(ContextOptions(ntlm_version=version)))
    desc = _sign_desc(b"to the server")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert bytes(_buf(desc, 1))[:4] == b"\x01\x00\x00\x00"
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK
    sealed = _sign_desc(b"to the client")
    assert adapter.encrypt_message(pair.server, 0, sealed, 0).status == S.SEC_E_OK
    assert bytes(_buf(sealed, 0)) != b"to the client"
    result = adapter.decrypt_message(pair.client, sealed, 0)
    assert (result.status, result.qop) == (S.SEC_E_OK, 0)
    assert bytes(_buf(sealed, 0)) == b"to the client"


def test_wrong_password_is_gss_s_failure(adapter: GssapiAdapter) -> None:
    """gss-ntlmssp reports a bad NT response as GSS_S_FAILURE / EINVAL, not GSS_S_UNAUTHORIZED."""
    server = adapter.server(V2)
    result = handshake(adapter.client(dataclasses.replace(V2, password="wrong")), server)
    assert isinstance(result, CallResult)
    assert result.status == S.SEC_E_INTERNAL_ERROR
    assert "major 0x000d0000 minor 22" in server.detail


def test_options_it_cannot_honour_are_refused(adapter: GssapiAdapter) -> None:
    # what gss-ntlmssp cannot be asked for: UNSUPPORTED
    with pytest.raises(CannotExpress, match="LM_KEY"):
        adapter.client(ContextOptions(lm_key=True))
    with pytest.raises(CannotExpress, match="':'"):
        adapter.server(ContextOptions(password="a:b"))
    # not an option at all: an adapter error (ERROR), not UNSUPPORTED
    with pytest.raises(AdapterError, match="version") as raised:
        adapter.client(ContextOptions(ntlm_version="v3"))
    assert not isinstance(raised.value, CannotExpress)


def test_environment_restored_and_user_file_removed(adapter: GssapiAdapter) -> None:
    before = os.environ.get("LM_COMPAT_LEVEL")
    _pair(adapter.establish(ContextOptions(ntlm_version="v1")))
    assert os.environ.get("LM_COMPAT_LEVEL") == before
    assert adapter._keydir is not None and not any(adapter._keydir.iterdir())


# -- against the reference ---------------------------------------------------------------


def _mirror(pair: ContextPair, reference: ReferenceAdapter, *, client: bool) -> Handle:
    """The reference's copy of the gss side, from the negotiated flags and gss-ntlmssp's own
    GSS_C_INQ_SSPI_SESSION_KEY answer."""
    assert pair.exported_session_key is not None
    return reference.from_session_key(pair.flags, pair.exported_session_key, client=client)


class _Mirrored:
    """Every call on the gss side is replayed on the reference's copy of that side (as the
    executor does: without ESS both directions share one RC4 stream), and must give the same
    status and the same bytes."""

    def __init__(self, gss: GssapiAdapter, handle: Handle, ref: ReferenceAdapter, mirror: Handle):
        self.gss, self.handle, self.ref, self.mirror = gss, handle, ref, mirror

    def __call__(self, op: str, desc: SecBufferDesc) -> int:
        twin = desc.copy()
        mine: CallResult = getattr(self.gss, op)(self.handle, *_args(op, desc))
        theirs: CallResult = getattr(self.ref, op)(self.mirror, *_args(op, twin))
        assert (mine.status, desc.to_json()) == (theirs.status, twin.to_json()), op
        return mine.status


def _args(op: str, desc: SecBufferDesc) -> tuple[object, ...]:
    return (0, desc, 0) if op in ("make_signature", "encrypt_message") else (desc, 0)


@pytest.mark.parametrize("version", VERSIONS)
def test_gss_client_reference_server(adapter: GssapiAdapter, version: str) -> None:
    options = ContextOptions(ntlm_version=version)
    ref = ReferenceAdapter()
    pair = _pair(handshake(adapter.client(options), ref.server(options)))
    gss = _Mirrored(adapter, pair.client, ref, _mirror(pair, ref, client=True))
    for text in (b"x", b"Plaintext" * 30):
        signed = _sign_desc(text)
        assert gss("make_signature", signed) == S.SEC_E_OK  # byte-identical signatures
        assert ref.verify_signature(pair.server, signed, 0).status == S.SEC_E_OK
        sealed = _sign_desc(text)
        assert gss("encrypt_message", sealed) == S.SEC_E_OK  # TOKEN ‖ DATA = gss wrap token
        assert ref.decrypt_message(pair.server, sealed, 0).status == S.SEC_E_OK
        back = _sign_desc(text[::-1])
        assert ref.encrypt_message(pair.server, 0, back, 0).status == S.SEC_E_OK
        assert gss("decrypt_message", back) == S.SEC_E_OK
        assert bytes(_buf(back, 0)) == text[::-1]
    tampered = _sign_desc(b"tamper")
    assert ref.make_signature(pair.server, 0, tampered, 0).status == S.SEC_E_OK
    _buf(tampered, 0)[0] ^= 1
    assert gss("verify_signature", tampered) == S.SEC_E_MESSAGE_ALTERED


@pytest.mark.parametrize("version", VERSIONS)
def test_reference_client_gss_server(adapter: GssapiAdapter, version: str) -> None:
    options = ContextOptions(ntlm_version=version)
    ref = ReferenceAdapter()
    pair = _pair(handshake(ref.client(options), adapter.server(options)))
    gss = _Mirrored(adapter, pair.server, ref, _mirror(pair, ref, client=False))
    signed = _sign_desc(b"from the reference")
    assert ref.make_signature(pair.client, 0, signed, 0).status == S.SEC_E_OK
    assert gss("verify_signature", signed) == S.SEC_E_OK
    reply = _sign_desc(b"reply")
    assert gss("encrypt_message", reply) == S.SEC_E_OK
    assert ref.decrypt_message(pair.client, reply, 0).status == S.SEC_E_OK
    assert bytes(_buf(reply, 0)) == b"reply"
    tampered = _sign_desc(b"tamper")
    assert gss("make_signature", tampered) == S.SEC_E_OK
    _buf(tampered, 1)[8] ^= 1
    assert ref.verify_signature(pair.client, tampered, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_handshake_messages_compared_with_the_reference(adapter: GssapiAdapter) -> None:
    """Where the two handshakes differ on the wire (none of it breaks interop)."""
    ref = ReferenceAdapter()
    options = dataclasses.replace(V2, key_exchange=False)
    client, server = adapter.client(options), ref.server(options)
    negotiate = client.step(None)[1]
    challenge = server.step(negotiate)[1]
    authenticate = m.decode_authenticate(client.step(challenge)[1])
    assert m.decode_negotiate(negotiate).flags == requested_flags(options)
    assert authenticate.flags == m.decode_challenge(challenge).flags
    assert authenticate.mic == bytes(16)  # no MIC unless SPNEGO asks (SPNEGO_REQUIRE_MIC)
    assert authenticate.lm_response == b""  # MS-NLMP §3.1.5.1.2 says Z(24); the reference too
    # no KEY_EXCH, yet a 16-byte zero EncryptedRandomSessionKey (MS-NLMP: length SHOULD be 0)
    assert authenticate.encrypted_session_key == bytes(16)
    # the reference client's MIC is checked: a flipped bit fails the gss acceptor
    ref_client, gss_server = ref.client(V2), adapter.server(V2)
    challenge = gss_server.step(ref_client.step(None)[1])[1]
    authenticate_bytes = bytearray(ref_client.step(challenge)[1])
    authenticate_bytes[m.MIC_OFFSET] ^= 1
    status, _ = gss_server.step(bytes(authenticate_bytes))
    assert status == S.SEC_E_INVALID_TOKEN and "Permission denied" in gss_server.detail


def test_key_exch_without_sign_crashes_the_gss_acceptor() -> None:
    """The reference client follows MS-NLMP §3.1.5.1.2: KEY_EXCH without SIGN/SEAL sends no
    EncryptedRandomSessionKey. gss-ntlmssp's acceptor memcpy()s 16 bytes from the empty
    field's NULL pointer (gss_sec_ctx.c, unchanged up to 1.3.1): SIGSEGV."""
    case = next(c for c in load_catalogue() if c.id == "sign-without-integrity[ntlmv2]")
    worker = isolated("harness.adapters.gss:GssapiAdapter")()
    try:
        outcome = execute(worker, case, peer=ReferenceAdapter(), role="server")
    finally:
        worker.close()
    assert outcome.outcome == "CRASH" and "SIGSEGV" in outcome.message


def test_datagram_server_uses_application_sequence_numbers(adapter: GssapiAdapter) -> None:
    options = dataclasses.replace(V2, datagram=True)
    ref = ReferenceAdapter()
    pair = _pair(handshake(ref.client(options), adapter.server(options)))
    seven, eight = _sign_desc(b"seven"), _sign_desc(b"eight")
    assert ref.make_signature(pair.client, 0, seven, 7).status == S.SEC_E_OK
    assert ref.make_signature(pair.client, 0, eight, 8).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, _copy(eight), 8).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, _copy(seven), 7).status == S.SEC_E_OK
    result = adapter.verify_signature(pair.server, _copy(seven), 9)
    assert result.status == S.SEC_E_MESSAGE_ALTERED  # never GSS_S_*_TOKEN: no sequence window


def test_datagram_with_itself_cannot_start(adapter: GssapiAdapter) -> None:
    """A connectionless gss-ntlmssp initiator sends nothing first (MS-NLMP §3.1.5.2) and the
    MIT mechglue cannot pick a mechanism for an empty first token."""
    result = adapter.establish(dataclasses.replace(V2, datagram=True))
    assert isinstance(result, CallResult)
    assert result.status == S.SEC_E_NO_CREDENTIALS and "server at leg 2" in result.detail


# -- what gss-ntlmssp does at the edges ------------------------------------------------------


def test_wrap_token_is_signature_then_ciphertext(adapter: GssapiAdapter) -> None:
    import gssapi.raw as gss

    pair = _pair(adapter.establish(V2))
    token = gss.wrap(adapter._contexts[pair.client].gss, b"abc").message
    assert len(token) == 16 + 3 and token[:4] == b"\x01\x00\x00\x00"
    with pytest.raises(gss.OperationUnavailableError):  # hence no READONLY capabilities
        gss.wrap_iov(adapter._contexts[pair.client].gss, gss.IOV(b"x", std_layout=True))


def test_verify_accepts_a_15_byte_signature(adapter: GssapiAdapter) -> None:
    """gss_verify_mic memcmp()s 16 bytes whatever the token length: a 1-byte over-read, here
    of Python's NUL terminator, which equals the high byte of sequence number 0."""
    pair = _pair(adapter.establish(V2))
    desc = _sign_desc(b"truncated")
    adapter.make_signature(pair.client, 0, desc, 0)
    del _buf(desc, 1)[15:]
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK


def test_failed_verify_and_unseal_consume_sequence_numbers(adapter: GssapiAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    good = _sign_desc(b"once")
    adapter.make_signature(pair.client, 0, good, 0)
    assert adapter.verify_signature(pair.server, _copy(good), 0).status == S.SEC_E_OK
    replay = adapter.verify_signature(pair.server, _copy(good), 0)
    assert replay.status == S.SEC_E_MESSAGE_ALTERED  # a replay is a bad MIC, not a duplicate
    sealed = _sign_desc(b"payload")
    adapter.encrypt_message(pair.client, 0, sealed, 0)
    broken = _copy(sealed)
    _buf(broken, 0)[0] ^= 1
    assert adapter.decrypt_message(pair.server, broken, 0).status == S.SEC_E_MESSAGE_ALTERED
    assert bytes(_buf(broken, 0)) != b"payload"
    assert adapter.decrypt_message(pair.server, sealed, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_empty_messages_are_rejected(adapter: GssapiAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    result = adapter.make_signature(pair.client, 0, _sign_desc(b""), 0)
    assert result.status == S.SEC_E_INVALID_PARAMETER
    assert "major 0x01000000" in result.detail  # GSS_S_CALL_INACCESSIBLE_READ from gss-ntlmssp


def test_qop(adapter: GssapiAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    assert adapter.make_signature(pair.client, 1, _sign_desc(b"q"), 0).status == (
        S.SEC_E_QOP_NOT_SUPPORTED
    )
    desc = _sign_desc(b"clear?")
    result = adapter.encrypt_message(pair.client, SECQOP_WRAP_NO_ENCRYPT, desc, 0)
    assert result.status == S.SEC_E_OK and result.detail == "wrap: conf_state 1"
    assert bytes(_buf(desc, 0)) != b"clear?"  # encrypted anyway


def test_contexts_without_seal_or_sign(adapter: GssapiAdapter) -> None:
    pair = _pair(adapter.establish(dataclasses.replace(V2, confidentiality=False)))
    desc = _sign_desc(b"sealed without SEAL")
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert adapter.decrypt_message(pair.server, desc, 0).status == S.SEC_E_OK
    pair = _pair(adapter.establish(dataclasses.replace(V2, integrity=False, confidentiality=False)))
    desc = _sign_desc(b"no keys")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert bytes(_buf(desc, 1)) == b"\x01" + bytes(15)
    result = adapter.encrypt_message(pair.client, 0, _sign_desc(b"no keys"), 0)
    assert result.status == S.SEC_E_INTERNAL_ERROR and "Invalid argument" in result.detail


def test_handles(adapter: GssapiAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    zero = adapter.make_signature(Handle.ZERO, 0, _sign_desc(b"x"), 0)
    assert zero.status == S.SEC_E_INVALID_HANDLE and "No context" in zero.detail  # mechglue
    assert adapter.delete_context(pair.client).status == S.SEC_E_OK
    deleted = adapter.make_signature(pair.client, 0, _sign_desc(b"x"), 0)
    assert deleted.status == S.SEC_E_INVALID_HANDLE and "No context" in deleted.detail
    assert adapter.delete_context(pair.client).status == S.SEC_E_INVALID_HANDLE
    garbage = adapter.make_signature(Handle.GARBAGE, 0, _sign_desc(b"x"), 0)
    assert garbage.status == S.SEC_E_INVALID_HANDLE and "not a handle" in garbage.detail


def test_sizes_are_not_invented(adapter: GssapiAdapter) -> None:
    """GSSAPI has no SECPKG_ATTR_SIZES: UNSUPPORTED with what it can say, never a status."""
    pair = _pair(adapter.establish(V2))
    with pytest.raises(CannotExpress, match="adds 16 bytes with confidentiality and 16 without"):
        adapter.query_sizes(pair.client)
    adapter.delete_context(pair.client)
    with pytest.raises(CannotExpress, match="no GSSAPI counterpart$"):
        adapter.query_sizes(pair.client)
    with pytest.raises(CannotExpress, match="SECPKG_ATTR_SIZES"):  # through the worker too
        _worker_call(lambda w: w.query_sizes(_pair(w.establish(V2)).client))


def _worker_call(call: Callable[[Any], object]) -> object:
    worker = isolated("harness.adapters.gss:GssapiAdapter")()
    try:
        return call(worker)
    finally:
        worker.close()


def _ntlm_types(transcript: list[tuple[str, bytes]]) -> list[tuple[str, int]]:
    """(sender, NTLM MessageType) of each token, MS-NLMP §2.2.1."""
    assert all(token[:8] == b"NTLMSSP\0" for _, token in transcript), transcript
    return [(who, int.from_bytes(token[8:12], "little")) for who, token in transcript]


def test_establish_keeps_the_tokens_for_the_report(adapter: GssapiAdapter) -> None:
    """Like base.handshake: every token sent, in order, so that a failing case gets a pcap."""
    pair = _pair(adapter.establish(V2))
    assert _ntlm_types(pair.transcript) == [("client", 1), ("server", 2), ("client", 3)]
    # The worker returns the pair by pickle: the transcript survives the trip.
    remote = _worker_call(lambda w: w.establish(V2))
    assert isinstance(remote, ContextPair)
    assert _ntlm_types(remote.transcript) == _ntlm_types(pair.transcript)


def test_a_failing_gss_case_gets_a_pcap_and_dissected_tokens(tmp_path: Path) -> None:
    """A failing gssapi case (gss-ntlmssp accepts a 15-byte signature), run in the worker as
    `run` does: the record carries the handshake and the report writes its pcap."""
    from harness.cli import main

    out = tmp_path / "run"
    case = "verify-truncated-signature-length[ntlmv2,len=15]"
    assert main(["run", "--adapter", "gssapi", "--no-peers", "--quiet", "--case", case,
                 "--out", str(out)]) == 1
    [record] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert record["outcome"] == "FAIL"
    assert [leg["from"] for leg in record["handshake"]] == ["client", "server", "client"]
    pcaps = list((out / "pcaps").rglob("*.pcap"))
    assert len(pcaps) == 1 and pcaps[0].stat().st_size > 0
    html = (out / "index.html").read_text()
    assert "NTLMSSP AUTHENTICATE_MESSAGE (" in html and "leg 3 from the client" in html


def test_inexpressible_descriptors_raise(adapter: GssapiAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    with pytest.raises(CannotExpress, match="no SECBUFFER_TOKEN"):
        adapter.make_signature(pair.client, 0, SecBufferDesc([SecBuffer.of(BufferType.DATA, 1)]), 0)
    readonly = SecBufferDesc(
        [
            SecBuffer.of(BufferType.DATA, b"h", SECBUFFER_READONLY),
            SecBuffer.of(BufferType.DATA, b"x"),
            SecBuffer.of(BufferType.TOKEN, 16),
        ]
    )
    with pytest.raises(CannotExpress, match="READONLY"):
        adapter.make_signature(pair.client, 0, readonly, 0)
    with pytest.raises(CannotExpress, match="15 bytes"):
        adapter.make_signature(pair.client, 0, _sign_desc(b"x", token=15), 0)


# -- the catalogue, gated on the reviewed baseline ------------------------------------------------

# Every failing case of the catalogue (alone, and against the reference in each role) is listed in
# tests/baselines/gssapi.json with its outcome and the reason gss-ntlmssp behaves so. The run
# passes the gate only if the failures are exactly those: a new failure is a regression, and a
# listed case that now passes is an unexpected pass, so a fixed bug forces the baseline (and its
# reason) to be updated. UNSUPPORTED and NON_STRICT cases are not failures and are not listed.
# GssapiAdapter.isolate puts it in a worker process, so its crashes are CRASH outcomes.
JOBS = ALL_JOBS


@pytest.mark.parametrize("jobs", JOBS)
def test_catalogue_matches_the_baseline(
    jobs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate_exit_code("gssapi", jobs, tmp_path) == 0, capsys.readouterr().err


def test_baseline_names_real_cases() -> None:
    """Every baseline entry matches some job of the catalogue (none is left over)."""
    assert stale_entries("gssapi", GssapiAdapter) == []
