"""The reference package's SSPI surface (harness/ntlm/package.py), called directly: handles,
sizes, TOKEN checks, pfQOP and failure hygiene, on contexts built from one session key."""

from __future__ import annotations

from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.handshake import Established
from harness.ntlm.package import NtlmPackage
from harness.ntlm.session import SessionSecurity
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import SECBUFFER_READONLY, BufferType
from harness.sspi.constants import SecStatus as S

KEY = bytes(range(16))
SIGN_SEAL = (
    F.UNICODE | F.NTLM | F.SIGN | F.SEAL | F.EXTENDED_SESSIONSECURITY | F.NEGOTIATE_128 | F.KEY_EXCH
)


def _pair(flags: int = SIGN_SEAL) -> tuple[NtlmPackage, tuple[int, int], tuple[int, int]]:
    package = NtlmPackage()
    ends = [
        package.add(
            Established(flags, KEY, True, SessionSecurity(flags, KEY, is_client=client)),
            is_client=client,
        )
        for client in (True, False)
    ]
    return package, ends[0], ends[1]


def _message(text: bytes, token: int = 16, flags: int = 0) -> SecBufferDesc:
    return SecBufferDesc(
        [SecBuffer.of(BufferType.DATA, text, flags), SecBuffer.of(BufferType.TOKEN, token)]
    )


def test_delete_is_ok_twice_and_an_unknown_handle_is_invalid() -> None:
    # DeleteSecurityContext: "If the function succeeds or the handle has already been deleted,
    # the return value is SEC_E_OK."
    package, client, _ = _pair()
    assert package.delete_context(client) == S.SEC_E_OK
    assert package.delete_context(client) == S.SEC_E_OK
    assert package.delete_context((12345, 678)) == S.SEC_E_INVALID_HANDLE
    assert package.make_signature(client, 0, _message(b"x"), 0) == S.SEC_E_INVALID_HANDLE


def test_sizes_follow_what_was_negotiated() -> None:
    package, client, _ = _pair()
    status, sizes = package.query_sizes(client)
    assert status == S.SEC_E_OK and sizes is not None
    assert (sizes.cbMaxSignature, sizes.cbSecurityTrailer) == (16, 16)
    bare, no_integrity, _ = _pair(F.UNICODE | F.NTLM | F.NEGOTIATE_128)
    status, sizes = bare.query_sizes(no_integrity)
    # SecPkgContext_Sizes: cbMaxSignature "must be zero if integrity services are not requested"
    assert status == S.SEC_E_OK and sizes is not None and sizes.cbMaxSignature == 0


def test_token_checks_and_pfqop() -> None:
    package, client, server = _pair()
    assert package.make_signature(client, 0, _message(b"m", token=15), 0) == S.SEC_E_INVALID_TOKEN
    signed = _message(b"signed")
    assert package.make_signature(client, 0, signed, 0) == S.SEC_E_OK
    # VerifySignature leaves pfQOP alone ("Some security packages ignore this parameter").
    assert package.verify_signature(server, signed, 0) == (S.SEC_E_OK, None)
    sealed = _message(b"sealed")
    assert package.encrypt_message(client, 0, sealed, 0) == S.SEC_E_OK
    assert package.decrypt_message(server, sealed, 0) == (S.SEC_E_OK, 0)
    assert bytes(sealed.buffers[0].data or b"") == b"sealed"  # type: ignore[index]


def test_a_failed_decrypt_releases_nothing_and_consumes_nothing() -> None:
    package, client, server = _pair()
    first, second = _message(b"first"), _message(b"second")
    assert package.encrypt_message(client, 0, first, 0) == S.SEC_E_OK
    assert package.encrypt_message(client, 0, second, 0) == S.SEC_E_OK
    ciphertext = bytes(second.buffers[0].data or b"")  # type: ignore[index]
    status, _ = package.decrypt_message(server, second, 0)  # out of order
    assert status == S.SEC_E_OUT_OF_SEQUENCE
    assert bytes(second.buffers[0].data or b"") == ciphertext  # type: ignore[index]
    assert package.decrypt_message(server, first, 0)[0] == S.SEC_E_OK


def test_readonly_data_is_neither_written_nor_signed() -> None:
    package, client, server = _pair()
    message = _message(b"header", flags=SECBUFFER_READONLY)
    assert package.encrypt_message(client, 0, message, 0) == S.SEC_E_OK
    assert bytes(message.buffers[0].data or b"") == b"header"  # type: ignore[index]
    # the Signing a Message page: "If the SECBUFFER_READONLY attribute is set, the buffer will
    # not be signed", so changing it does not break the signature
    message.buffers[0].data = bytearray(b"HEADER")  # type: ignore[index]
    assert package.decrypt_message(server, message, 0)[0] == S.SEC_E_OK
