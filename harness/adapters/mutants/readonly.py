"""Mutants that get SECBUFFER_READONLY / SECBUFFER_READONLY_WITH_CHECKSUM wrong: which buffers
are signed, which are encrypted, and that the package never writes into read-only memory."""

from __future__ import annotations

import struct

from harness.adapters.base import CallResult, Handle
from harness.adapters.mutants._base import MutantAdapter, Pairs, ViewMutant, shadow
from harness.ntlm.crypto import RC4Stream, crc32, hmac_md5, xor_bytes
from harness.ntlm.session import SIGNATURE_SIZE, SIGNATURE_VERSION, Direction, SessionSecurity
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_ATTRMASK,
    SECBUFFER_READONLY,
    BufferType,
)


def _without_readonly(buf: SecBuffer) -> int:
    """DATA buffers lose a plain READONLY flag (READONLY_WITH_CHECKSUM stays)."""
    if buf.kind == BufferType.DATA and buf.readonly and not buf.readonly_with_checksum:
        return buf.buffer_type & ~SECBUFFER_READONLY & 0xFFFFFFFF
    return buf.buffer_type


def _checksum_as_readonly(buf: SecBuffer) -> int:
    """READONLY_WITH_CHECKSUM read as if it were READONLY."""
    if buf.kind == BufferType.DATA and buf.readonly_with_checksum:
        return int(buf.kind) | SECBUFFER_READONLY
    return buf.buffer_type


def _writable(buf: SecBuffer) -> int:
    """Every DATA buffer seen as plain, writable data."""
    if buf.kind == BufferType.DATA:
        return buf.buffer_type & ~SECBUFFER_ATTRMASK & 0xFFFFFFFF
    return buf.buffer_type


class SignsReadonly(ViewMutant):
    """Bug: MakeSignature and VerifySignature checksum every DATA buffer, ignoring
    SECBUFFER_READONLY, so a header the caller marked "do not sign" is covered anyway.

    Breaks "Signing a Message (SSPI)": "If the SECBUFFER_READONLY attribute is set, the buffer
    will not be signed." """

    name = "mutant-signs-readonly"
    misread = frozenset({"sign", "verify"})

    def view(self, message: SecBufferDesc | None) -> tuple[SecBufferDesc | None, Pairs]:
        return shadow(message, _without_readonly)


class SkipsReadonlyWithChecksum(ViewMutant):
    """Bug: treats SECBUFFER_READONLY_WITH_CHECKSUM like SECBUFFER_READONLY and leaves the
    buffer out of the checksum in every message function (a reading of the MakeSignature
    page's "does not process buffers with the SECBUFFER_READONLY_WITH_CHECKSUM attribute").

    Breaks the SecBuffer page: READONLY_WITH_CHECKSUM "is intended for sending header
    information to the security package for computing the checksum", which Windows does
    (Wine's dlls/secur32/tests/ntlm.c signature vectors)."""

    name = "mutant-skips-readonly-with-checksum"
    misread = frozenset({"sign", "verify", "seal", "unseal"})

    def view(self, message: SecBufferDesc | None) -> tuple[SecBufferDesc | None, Pairs]:
        return shadow(message, _checksum_as_readonly)


class EncryptsReadonly(ViewMutant):
    """Bug: EncryptMessage encrypts every DATA buffer in place, read-only ones included (the
    attribute bits are not masked before the type test), so it writes into caller memory it
    was told not to touch and sends the header encrypted.

    Breaks EncryptMessage (General): "The function does not process buffers with the
    SECBUFFER_READONLY attribute", and the SecBuffer page: "The package can read this buffer,
    but cannot modify it"."""

    name = "mutant-encrypts-readonly"
    misread = frozenset({"seal"})

    def view(self, message: SecBufferDesc | None) -> tuple[SecBufferDesc | None, Pairs]:
        return shadow(message, _writable)


class _KeystreamRecordingSession(SessionSecurity):
    """Remembers the RC4 keystream that covered the last computed signature (bytes 0..16,
    zero where nothing was encrypted), which is what an in-place decryption XORs in."""

    last_keystream = b""

    def _mac(
        self, direction: Direction, handle: RC4Stream, seq: int, message: bytes | bytearray
    ) -> bytes:
        signature = super()._mac(direction, handle, seq, message)
        seq_bytes = struct.pack("<I", seq)
        if self.ess:
            assert direction.signing_key is not None
            checksum = hmac_md5(direction.signing_key, seq_bytes + message)[:8]
            plain = SIGNATURE_VERSION + checksum + seq_bytes
        else:
            plain = SIGNATURE_VERSION + b"\x00" * 4 + crc32(message) + seq_bytes
        self.last_keystream = xor_bytes(signature, plain)
        return signature


class WritesInputToken(MutantAdapter):
    """Bug: VerifySignature and DecryptMessage RC4-decrypt the received signature in place,
    in the caller's TOKEN buffer, before comparing it (the natural in-place RC4 call of a C
    package), so the caller's input is left altered.

    Breaks the SecBuffer page: SECBUFFER_TOKEN "is read-only for input parameters"
    (VerifySignature's pMessage is an [in] parameter)."""

    name = "mutant-writes-input-token"
    session_class = _KeystreamRecordingSession

    def _decrypt_token_in_place(self, handle: Handle, message: SecBufferDesc | None) -> None:
        session = self.session(handle)
        token = message.first(BufferType.TOKEN) if message and message.buffers else None
        if not isinstance(session, _KeystreamRecordingSession) or token is None:
            return
        stream, session.last_keystream = session.last_keystream, b""
        if stream.strip(b"\x00") and token.data is not None and len(token.data) >= SIGNATURE_SIZE:
            token.data[:SIGNATURE_SIZE] = xor_bytes(bytes(token.data[:SIGNATURE_SIZE]), stream)

    def _forget(self, handle: Handle) -> None:
        session = self.session(handle)
        if isinstance(session, _KeystreamRecordingSession):
            session.last_keystream = b""

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        self._forget(handle)
        result = super().verify_signature(handle, message, seqno)
        self._decrypt_token_in_place(handle, message)
        return result

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        self._forget(handle)
        result = super().decrypt_message(handle, message, seqno)
        self._decrypt_token_in_place(handle, message)
        return result


__all__ = [
    "EncryptsReadonly",
    "SignsReadonly",
    "SkipsReadonlyWithChecksum",
    "WritesInputToken",
]
