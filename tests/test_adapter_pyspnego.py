"""The pyspnego adapter (pyspnego's pure-Python NTLM) against itself, against the reference in
both roles, and over the whole catalogue. Assertions state what pyspnego 0.12.4 really does."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
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
from harness.adapters.spnego_ntlm import (
    STATUS_BY_EXCEPTION,
    PyspnegoAdapter,
    _status_of,
)
from harness.ntlm.flags import NegotiateFlags as F
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECQOP_WRAP_NO_ENCRYPT,
    BufferType,
)
from harness.sspi.constants import SecStatus as S

_AVAILABILITY = PyspnegoAdapter.available()
if not _AVAILABILITY.ok:
    pytest.skip(_AVAILABILITY.reason, allow_module_level=True)

V2 = ContextOptions()
V1_ESS = ContextOptions(ntlm_version="v1-ess")
V1_LM_KEY = ContextOptions(ntlm_version="v1", lm_key=True)
ENV_NAMES = ("NTLM_USER_FILE", "LM_COMPAT_LEVEL")


@pytest.fixture
def adapter() -> Iterator[PyspnegoAdapter]:
    instance = PyspnegoAdapter()
    yield instance
    instance.close()


def _pair(result: ContextPair | CallResult) -> ContextPair:
    assert isinstance(result, ContextPair), result
    return result


def _desc(*buffers: SecBuffer) -> SecBufferDesc:
    return SecBufferDesc(list(buffers))


def _signed(text: bytes) -> SecBufferDesc:
    return _desc(SecBuffer.of(BufferType.DATA, text), SecBuffer.of(BufferType.TOKEN, 16))


def _copy(desc: SecBufferDesc) -> SecBufferDesc:
    return desc.copy()


def _user_files() -> set[str]:
    return {f for f in os.listdir(tempfile.gettempdir()) if f.startswith("sspi-harness-ntlm-")}


# -- handshakes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "present", "absent"),
    [
        (V2, F.EXTENDED_SESSIONSECURITY | F.KEY_EXCH | F.SIGN | F.SEAL | F.NEGOTIATE_128, F.LM_KEY),
        (V1_ESS, F.EXTENDED_SESSIONSECURITY | F.KEY_EXCH | F.SEAL, F.LM_KEY),
        (V1_LM_KEY, F.LM_KEY | F.KEY_EXCH | F.SEAL, F.EXTENDED_SESSIONSECURITY),
        (ContextOptions(integrity=False, confidentiality=False), F.KEY_EXCH, F.SIGN | F.SEAL),
        (ContextOptions(confidentiality=False), F.SIGN, F.SEAL),
    ],
)
def test_handshake_with_itself(
    adapter: PyspnegoAdapter, options: ContextOptions, present: F, absent: F
) -> None:
    pair = _pair(adapter.establish(options))
    assert pair.flags & present == present
    assert not pair.flags & absent
    assert pair.exported_session_key is not None and len(pair.exported_session_key) == 16
    desc = _signed(b"hello")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK


@pytest.mark.parametrize(
    ("options", "why"),
    [
        (ContextOptions(ntlm_version="v1"), "asks for LM_KEY whenever ESS is off"),
        (ContextOptions(lm_key=True), "never with NTLMv2"),
        (ContextOptions(key_exchange=False), "KEY_EXCH"),
        (ContextOptions(key_bits=56), "56-bit"),
        (ContextOptions(key_bits=40), "40-bit"),
        (ContextOptions(datagram=True), "no datagram mode"),
    ],
)
def test_client_refuses_options_pyspnego_cannot_request(
    adapter: PyspnegoAdapter, options: ContextOptions, why: str
) -> None:
    with pytest.raises(CannotExpress, match=why):
        adapter.client(options)


def test_server_refuses_what_it_cannot_express(adapter: PyspnegoAdapter) -> None:
    with pytest.raises(CannotExpress, match="no datagram mode"):
        adapter.server(ContextOptions(datagram=True))
    with pytest.raises(CannotExpress, match="DOMAIN:USER:PASSWORD"):
        adapter.server(ContextOptions(password="pass:word"))


def test_environment_is_restored_and_user_files_removed(
    adapter: PyspnegoAdapter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A caller's own values (which would break the handshake if pyspnego saw them) survive.
    monkeypatch.setenv("LM_COMPAT_LEVEL", "5")
    monkeypatch.setenv("NTLM_USER_FILE", str(tmp_path / "someone-elses-file"))
    before_files = _user_files()
    for options in (V2, V1_ESS, V1_LM_KEY):
        _pair(adapter.establish(options))
    assert os.environ["LM_COMPAT_LEVEL"] == "5"
    assert os.environ["NTLM_USER_FILE"] == str(tmp_path / "someone-elses-file")
    monkeypatch.delenv("LM_COMPAT_LEVEL")
    monkeypatch.delenv("NTLM_USER_FILE")
    _pair(adapter.establish(V2))
    assert not any(name in os.environ for name in ENV_NAMES)
    assert _user_files() == before_files


def test_wrong_password_fails_the_handshake_with_pyspnegos_text(
    adapter: PyspnegoAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    knows_other_password = dataclasses.replace(V2, password="Other")
    real_server = adapter.server
    monkeypatch.setattr(adapter, "server", lambda options: real_server(knows_other_password))
    result = adapter.establish(V2)
    assert isinstance(result, CallResult)
    # pyspnego raises InvalidTokenError ("logon denied" and "invalid token" share one class)
    assert result.status == S.SEC_E_INVALID_TOKEN
    assert "server failed at handshake leg 4: InvalidTokenError" in result.detail
    assert "Invalid NTLM response from initiator" in result.detail


def test_unknown_user_is_a_status_not_an_exception(adapter: PyspnegoAdapter) -> None:
    client = adapter.client(ContextOptions(user="Stranger"))
    result = handshake(client, adapter.server(V2))
    assert isinstance(result, CallResult)
    assert result.status == S.SEC_E_INTERNAL_ERROR  # SpnegoError(failure): not in the user file


# -- against the reference, both roles ----------------------------------------------------------


def _exchange(
    tested: PyspnegoAdapter, tested_handle: Handle, ref: ReferenceAdapter, ref_handle: Handle
) -> None:
    """Sign/verify and seal/unseal both ways, plus tampering, across the two adapters."""
    for text in (b"", b"x", b"Plaintext" * 50):
        desc = _signed(text)
        assert tested.make_signature(tested_handle, 0, desc, 0).status == S.SEC_E_OK
        assert ref.verify_signature(ref_handle, desc, 0).status == S.SEC_E_OK

        desc = _signed(text)
        assert ref.make_signature(ref_handle, 0, desc, 0).status == S.SEC_E_OK
        assert tested.verify_signature(tested_handle, desc, 0).status == S.SEC_E_OK

        desc = _signed(text)
        assert tested.encrypt_message(tested_handle, 0, desc, 0).status == S.SEC_E_OK
        # a 1-byte ciphertext equals its plaintext with probability 1/256: check longer ones
        assert len(text) < 4 or bytes(desc.buffers[0].data) != text  # type: ignore[index,arg-type]
        assert ref.decrypt_message(ref_handle, desc, 0).status == S.SEC_E_OK
        assert bytes(desc.buffers[0].data) == text  # type: ignore[index,arg-type]

        desc = _signed(text)
        assert ref.encrypt_message(ref_handle, 0, desc, 0).status == S.SEC_E_OK
        result = tested.decrypt_message(tested_handle, desc, 0)
        assert (result.status, result.qop) == (S.SEC_E_OK, 0)
        assert bytes(desc.buffers[0].data) == text  # type: ignore[index,arg-type]

    # tampering is detected both ways (each side then is out of step, so check once each)
    desc = _signed(b"pay 100 to alice")
    assert tested.make_signature(tested_handle, 0, desc, 0).status == S.SEC_E_OK
    desc.buffers[0].data[4] ^= 1  # type: ignore[index]
    assert ref.verify_signature(ref_handle, desc, 0).status == S.SEC_E_MESSAGE_ALTERED
    desc = _signed(b"pay 100 to bob")
    assert ref.encrypt_message(ref_handle, 0, desc, 0).status == S.SEC_E_OK
    desc.buffers[0].data[0] ^= 0x20  # type: ignore[index]
    result = tested.decrypt_message(tested_handle, desc, 0)
    assert result.status == S.SEC_E_MESSAGE_ALTERED and result.detail.startswith("BadMICError")


@pytest.mark.parametrize("options", [V2, V1_ESS], ids=["v2", "v1-ess"])
def test_pyspnego_client_reference_server(
    adapter: PyspnegoAdapter, options: ContextOptions
) -> None:
    ref = ReferenceAdapter()
    pair = _pair(handshake(adapter.client(options), ref.server(options)))
    assert pair.flags & F.KEY_EXCH and pair.flags & F.SEAL
    assert bool(pair.flags & F.EXTENDED_SESSIONSECURITY)
    _exchange(adapter, pair.client, ref, pair.server)


@pytest.mark.parametrize(
    "options",
    [
        V2,
        V1_ESS,
        ContextOptions(ntlm_version="v1"),  # plain v1 works with pyspnego as the server
        V1_LM_KEY,
        ContextOptions(key_exchange=False),
        ContextOptions(key_bits=56),
        ContextOptions(key_bits=40, ntlm_version="v1"),
    ],
    ids=["v2", "v1-ess", "v1", "v1-lm-key", "no-key-exch", "56-bit", "v1-40-bit"],
)
def test_reference_client_pyspnego_server(
    adapter: PyspnegoAdapter, options: ContextOptions
) -> None:
    ref = ReferenceAdapter()
    pair = _pair(handshake(ref.client(options), adapter.server(options)))
    assert bool(pair.flags & F.KEY_EXCH) == options.key_exchange
    assert bool(pair.flags & F.NEGOTIATE_128) == (options.key_bits == 128)
    _exchange(adapter, pair.server, ref, pair.client)


# -- message functions: what pyspnego does -------------------------------------------------------


def test_handles_are_the_adapters_table(adapter: PyspnegoAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    for handle in (Handle.ZERO, Handle.GARBAGE):
        result = adapter.make_signature(handle, 0, _signed(b"x"), 0)
        assert result.status == S.SEC_E_INVALID_HANDLE and "adapter" in result.detail
    assert adapter.delete_context(pair.client).status == S.SEC_E_OK
    assert adapter.delete_context(pair.client).status == S.SEC_E_INVALID_HANDLE
    assert adapter.verify_signature(pair.client, _signed(b"x"), 0).status == S.SEC_E_INVALID_HANDLE


def test_sizes_are_not_invented(adapter: PyspnegoAdapter) -> None:
    """No QueryContextAttributes(SIZES) in pyspnego: CannotExpress, and a case that asks for
    it (were the capability claimed) is UNSUPPORTED with that reason, not a made-up status."""
    from harness.runner.executor import execute
    from harness.scenarios import load_catalogue

    pair = _pair(adapter.establish(V2))
    with pytest.raises(CannotExpress, match=r"query_message_sizes\(\) gives only the header"):
        adapter.query_sizes(pair.client)

    class ClaimsSizes(PyspnegoAdapter):
        capabilities = PyspnegoAdapter.capabilities | Capability.SIZES

    (case,) = [c for c in load_catalogue() if c.id == "sizes-after-establish[ntlmv2]"]
    outcome = execute(ClaimsSizes(), case)
    assert outcome.outcome == "UNSUPPORTED"
    assert "no QueryContextAttributes(SECPKG_ATTR_SIZES)" in outcome.message


def test_sign_rejects_any_qop(adapter: PyspnegoAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    result = adapter.make_signature(pair.client, 1, _signed(b"qop"), 0)
    assert result.status == S.SEC_E_QOP_NOT_SUPPORTED
    assert result.detail.startswith("UnsupportedQop")


def test_several_data_buffers_are_signed_in_order(adapter: PyspnegoAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    two = _desc(
        SecBuffer.of(BufferType.DATA, b"first "),
        SecBuffer.of(BufferType.DATA, b"second"),
        SecBuffer.of(BufferType.TOKEN, 16),
    )
    assert adapter.make_signature(pair.client, 0, two, 0).status == S.SEC_E_OK
    token = bytes(two.buffers[2].data or b"")  # type: ignore[index]
    joined = _desc(
        SecBuffer.of(BufferType.DATA, b"first second"), SecBuffer.of(BufferType.TOKEN, token)
    )
    assert adapter.verify_signature(pair.server, joined, 0).status == S.SEC_E_OK


def test_sealing_judges_the_iov_layout(adapter: PyspnegoAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    two_plain = _desc(
        SecBuffer.of(BufferType.DATA, b"a"),
        SecBuffer.of(BufferType.DATA, b"b"),
        SecBuffer.of(BufferType.TOKEN, 16),
    )
    result = adapter.encrypt_message(pair.client, 0, two_plain, 0)
    assert result.status == S.SEC_E_INVALID_TOKEN and "only be used with 1 data" in result.detail
    no_token = _desc(SecBuffer.of(BufferType.DATA, b"a"))
    result = adapter.encrypt_message(pair.client, 0, no_token, 0)
    assert result.status == S.SEC_E_INVALID_TOKEN and "no IOV header" in result.detail
    assert bytes(no_token.buffers[0].data) == b"a"  # type: ignore[index,arg-type]


def test_readonly_with_checksum_header_is_signed_not_encrypted(adapter: PyspnegoAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    desc = _desc(
        SecBuffer.of(BufferType.DATA, b"HDR", SECBUFFER_READONLY_WITH_CHECKSUM),
        SecBuffer.of(BufferType.DATA, b"payload"),
        SecBuffer.of(BufferType.TOKEN, 16),
    )
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert bytes(desc.buffers[0].data) == b"HDR"  # type: ignore[index,arg-type]
    forged = _copy(desc)
    forged.buffers[0].data[:] = b"XXX"  # type: ignore[index]
    assert adapter.decrypt_message(pair.server, forged, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_readonly_data_is_signed_not_encrypted_when_sealing(adapter: PyspnegoAdapter) -> None:
    """DATA|READONLY is pyspnego's ``data_readonly``, which its NTLM wrap_iov signs as well."""
    pair = _pair(adapter.establish(V2))
    desc = _desc(
        SecBuffer.of(BufferType.DATA, b"HDR", SECBUFFER_READONLY),
        SecBuffer.of(BufferType.DATA, b"payload"),
        SecBuffer.of(BufferType.TOKEN, 16),
    )
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert bytes(desc.buffers[0].data) == b"HDR"  # type: ignore[index,arg-type]
    assert bytes(desc.buffers[1].data) != b"payload"  # type: ignore[index,arg-type]
    forged = _copy(desc)
    forged.buffers[0].data[:] = b"XXX"  # type: ignore[index]
    assert adapter.decrypt_message(pair.server, forged, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_wrap_no_encrypt_still_encrypts(adapter: PyspnegoAdapter) -> None:
    """pyspnego's NTLM ignores encrypt=False (SECQOP_WRAP_NO_ENCRYPT) and seals anyway."""
    pair = _pair(adapter.establish(V2))
    desc = _signed(b"in the clear?")
    result = adapter.encrypt_message(pair.client, SECQOP_WRAP_NO_ENCRYPT, desc, 0)
    assert result.status == S.SEC_E_OK
    assert "encrypt=False and reports encrypted=True" in result.detail
    assert bytes(desc.buffers[0].data) != b"in the clear?"  # type: ignore[index,arg-type]


def test_failed_verify_consumes_a_sequence_number(adapter: PyspnegoAdapter) -> None:
    """Evidence for verify-reorder/-replay: pyspnego takes the sequence number before it
    compares, so after one bad signature the genuine one no longer verifies."""
    pair = _pair(adapter.establish(V2))
    first, second = _signed(b"first"), _signed(b"second")
    assert adapter.make_signature(pair.client, 0, first, 0).status == S.SEC_E_OK
    assert adapter.make_signature(pair.client, 0, second, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, second, 0).status == S.SEC_E_MESSAGE_ALTERED
    assert adapter.verify_signature(pair.server, first, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_failed_unseal_consumes_keystream(adapter: PyspnegoAdapter) -> None:
    """Evidence for seal-context-usable-after-failure: unwrap decrypts (advancing RC4) and
    takes the sequence number before checking the signature."""
    pair = _pair(adapter.establish(V2))
    desc = _signed(b"genuine")
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    bad = _copy(desc)
    bad.buffers[1].data[9] ^= 1  # type: ignore[index]
    assert adapter.decrypt_message(pair.server, bad, 0).status == S.SEC_E_MESSAGE_ALTERED
    assert adapter.decrypt_message(pair.server, desc, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_seal_without_confidentiality_encrypts(adapter: PyspnegoAdapter) -> None:
    """pyspnego's wrap checks only for integrity *or* confidentiality, so a SIGN-only context
    (no NTLMSSP_NEGOTIATE_SEAL) still seals, and the peer unseals it."""
    pair = _pair(adapter.establish(ContextOptions(confidentiality=False)))
    assert not pair.flags & F.SEAL
    desc = _signed(b"secret?")
    assert adapter.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert bytes(desc.buffers[0].data) != b"secret?"  # type: ignore[index,arg-type]
    assert adapter.decrypt_message(pair.server, desc, 0).status == S.SEC_E_OK
    assert bytes(desc.buffers[0].data) == b"secret?"  # type: ignore[index,arg-type]


def test_no_integrity_signature_is_the_fixed_always_sign_one(adapter: PyspnegoAdapter) -> None:
    pair = _pair(adapter.establish(ContextOptions(integrity=False, confidentiality=False)))
    desc = _signed(b"unsigned context")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert bytes(desc.buffers[1].data) == b"\x01" + bytes(15)  # type: ignore[index,arg-type]
    result = adapter.encrypt_message(pair.client, 0, _signed(b"x"), 0)
    assert result.status == S.SEC_E_UNSUPPORTED_FUNCTION  # OperationNotAvailableError
    assert "without integrity or confidentiality" in result.detail


def test_inexpressible_calls_raise_cannot_express(adapter: PyspnegoAdapter) -> None:
    pair = _pair(adapter.establish(V2))
    flagged = _desc(
        SecBuffer.of(BufferType.DATA, b"h", SECBUFFER_READONLY_WITH_CHECKSUM),
        SecBuffer.of(BufferType.TOKEN, 16),
    )
    with pytest.raises(CannotExpress, match="READONLY"):
        adapter.make_signature(pair.client, 0, flagged, 0)
    with pytest.raises(CannotExpress, match="no SECBUFFER_TOKEN"):
        adapter.make_signature(pair.client, 0, _desc(SecBuffer.of(BufferType.DATA, b"x")), 0)
    with pytest.raises(CannotExpress, match="NULL descriptor"):
        adapter.make_signature(pair.client, 0, None, 0)
    short = _desc(SecBuffer.of(BufferType.DATA, b"x"), SecBuffer.of(BufferType.TOKEN, 8))
    with pytest.raises(CannotExpress, match="holds 8 bytes"):
        adapter.encrypt_message(pair.client, 0, short, 0)
    both = _desc(
        SecBuffer.of(BufferType.DATA, b"h", SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM),
        SecBuffer.of(BufferType.TOKEN, 16),
    )
    with pytest.raises(CannotExpress, match="both READONLY"):
        adapter.encrypt_message(pair.client, 0, both, 0)
    # nothing was consumed by the refused calls: the next message still verifies
    desc = _signed(b"after")
    assert adapter.make_signature(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, desc, 0).status == S.SEC_E_OK


def test_status_table() -> None:
    from spnego import exceptions as ex

    assert _status_of(ex.BadMICError())[0] == S.SEC_E_MESSAGE_ALTERED
    assert _status_of(ex.InvalidTokenError())[0] == S.SEC_E_INVALID_TOKEN
    assert _status_of(ex.NoContextError())[0] == S.SEC_E_INVALID_HANDLE
    assert _status_of(ex.UnsupportedQop())[0] == S.SEC_E_QOP_NOT_SUPPORTED
    assert _status_of(ex.OperationNotAvailableError())[0] == S.SEC_E_UNSUPPORTED_FUNCTION
    assert _status_of(ex.SpnegoError(ex.ErrorCode.failure))[0] == S.SEC_E_INTERNAL_ERROR
    status, text = _status_of(ValueError("odd"))
    assert (status, text) == (S.SEC_E_INTERNAL_ERROR, "ValueError: odd")
    # every table entry names a real pyspnego exception class
    assert all(isinstance(getattr(ex, name), type) for name in STATUS_BY_EXCEPTION)


# -- the catalogue, gated on the reviewed baseline ------------------------------------------------

# Every failing case of the catalogue (alone, and against the reference in each role) is listed
# in tests/baselines/pyspnego.json with its outcome and the reason pyspnego behaves so. The run
# passes the gate only if the failures are exactly those: a new failure is a regression, and a
# listed case that now passes is an unexpected pass, so a fixed bug forces the baseline (and its
# reason) to be updated. UNSUPPORTED and NON_STRICT cases are not failures and are not listed.
JOBS = ALL_JOBS


@pytest.mark.parametrize("jobs", JOBS)
def test_catalogue_matches_the_baseline(
    jobs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate_exit_code("pyspnego", jobs, tmp_path) == 0, capsys.readouterr().err


def test_baseline_names_real_cases() -> None:
    """Every baseline entry matches some job of the catalogue (none is left over)."""
    assert stale_entries("pyspnego", PyspnegoAdapter) == []
