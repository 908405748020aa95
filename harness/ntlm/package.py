"""The SSPI message functions of the reference NTLM package, over SecBufferDesc.

This is the SpMakeSignature-side of the package: a handle table and, per call, the checks an
SSP makes before it touches bytes. Where the SSPI pages name a status for a condition, that
status is used (the docstrings quote the page); where they are silent, the choice is stated.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.handshake import Established
from harness.ntlm.session import SIGNATURE_SIZE, SessionSecurity
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_ATTRMASK,
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECBUFFER_VERSION,
    SECQOP_WRAP_NO_ENCRYPT,
    BufferType,
)
from harness.sspi.constants import SecStatus as S
from harness.sspi.sizes import SecPkgContextSizes

# QuerySecurityPackageInfo("NTLM")->cbMaxToken on current Windows, as recorded by Wine's
# dlls/secur32/tests/ntlm.c; we report the same so that callers size buffers alike.
NTLM_MAX_TOKEN = 2888

Handle = tuple[int, int]

# Plain ints for the per-call checks (enum arithmetic costs microseconds a call).
_DATA, _TOKEN = int(BufferType.DATA), int(BufferType.TOKEN)
_KIND_MASK = ~SECBUFFER_ATTRMASK & 0xFFFFFFFF
_SIGN_OR_SEAL, _SEAL = int(F.SIGN | F.SEAL), int(F.SEAL)
_DATAGRAM, _ESS = int(F.DATAGRAM), int(F.EXTENDED_SESSIONSECURITY)
_READONLY, _WITH_CHECKSUM = SECBUFFER_READONLY, SECBUFFER_READONLY_WITH_CHECKSUM
_EITHER_READONLY = _READONLY | _WITH_CHECKSUM


@dataclass
class Context:
    established: Established
    is_client: bool

    @functools.cached_property
    def integrity(self) -> bool:
        return bool(self.established.flags & _SIGN_OR_SEAL)

    @functools.cached_property
    def confidentiality(self) -> bool:
        """SEAL negotiated; "Message confidentiality is available in connectionless mode only
        if the client configures extended session security" (§3.4.3)."""
        flags = int(self.established.flags)
        if flags & _DATAGRAM and not flags & _ESS:
            return False
        return bool(flags & _SEAL)


@dataclass
class _Call:
    """A message call that passed the common checks."""

    session: SessionSecurity
    buffers: list[SecBuffer]
    token: SecBuffer | None
    data: list[SecBuffer]


def _checked(
    desc: SecBufferDesc | None,
) -> tuple[S, list[SecBuffer], SecBuffer | None, list[SecBuffer]]:
    """The buffers of a descriptor a package can trust, with its first TOKEN and its DATA
    buffers, or SEC_E_INVALID_TOKEN.

    A C package cannot tell a lying ``cbBuffer`` from a true one; the model can, and treats
    the lie like the access violation it would cause: as an invalid token.
    """
    if desc is None or desc.buffers is None or desc.version != SECBUFFER_VERSION:
        return S.SEC_E_INVALID_TOKEN, [], None, []
    count = desc.c_buffers
    if count > len(desc.buffers):
        return S.SEC_E_INVALID_TOKEN, [], None, []
    buffers = desc.buffers[:count]
    token, data = None, []
    for buf in buffers:
        kind = buf.buffer_type & _KIND_MASK
        if kind == _DATA or kind == _TOKEN:
            content, declared = buf.data, buf.declared_length
            if content is None:
                if declared:
                    return S.SEC_E_INVALID_TOKEN, [], None, []
            elif declared is not None and declared > len(content):
                return S.SEC_E_INVALID_TOKEN, [], None, []
            if kind == _DATA:
                data.append(buf)
            elif token is None:
                token = buf
    return S.SEC_E_OK, buffers, token, data


def _bytes(buf: SecBuffer) -> bytes:
    data = buf.data
    if data is None:
        return b""
    declared = buf.declared_length
    if declared is None or declared >= len(data):
        return bytes(data)
    return bytes(memoryview(data)[:declared])


def _joined(buffers: list[SecBuffer]) -> bytes | bytearray:
    """The bytes of ``buffers`` one after the other; a single whole buffer is not copied."""
    if len(buffers) == 1:
        buf = buffers[0]
        if buf.data is not None and buf.declared_length in (None, len(buf.data)):
            return buf.data
    return b"".join([_bytes(b) for b in buffers])


def _is_signed(buf: SecBuffer) -> bool:
    """DATA buffers are signed unless marked READONLY without READONLY_WITH_CHECKSUM.

    The seed: "If the SECBUFFER_READONLY attribute is set, the buffer will not be signed".
    READONLY_WITH_CHECKSUM is signed: the SecBuffer page says the flag is "intended for
    sending header information to the security package for computing the checksum", and
    Windows does so (Wine's ntlm.c vectors), though the MakeSignature page says the function
    "does not process buffers with the SECBUFFER_READONLY_WITH_CHECKSUM attribute".
    """
    kind = buf.buffer_type
    return kind & _KIND_MASK == _DATA and (not kind & _READONLY or bool(kind & _WITH_CHECKSUM))


def _is_encrypted(buf: SecBuffer) -> bool:
    """Only DATA buffers with neither read-only attribute are encrypted."""
    return buf.buffer_type & _KIND_MASK == _DATA and not buf.buffer_type & _EITHER_READONLY


def _write_token(token: SecBuffer, signature: bytes) -> None:
    """Write the signature at the start of TOKEN and set cbBuffer to its size."""
    assert token.data is not None
    token.data[:SIGNATURE_SIZE] = signature
    del token.data[SIGNATURE_SIZE:]
    token.declared_length = None


class NtlmPackage:
    """The handle table and the message functions of one in-process package instance."""

    def __init__(self) -> None:
        self._contexts: dict[Handle, Context] = {}
        self._deleted: set[Handle] = set()
        self._ids = itertools.count(1)

    def add(self, established: Established, *, is_client: bool) -> Handle:
        handle = (next(self._ids), 0x4E544C4D)  # dwUpper tags the package: "NTLM"
        self._contexts[handle] = Context(established, is_client)
        return handle

    def context(self, handle: Handle) -> Context | None:
        return self._contexts.get(handle)

    def delete_context(self, handle: Handle) -> S:
        """DeleteSecurityContext: "If the function succeeds or the handle has already been
        deleted, the return value is SEC_E_OK"; a handle never issued is SEC_E_INVALID_HANDLE."""
        if self._contexts.pop(handle, None) is not None:
            self._deleted.add(handle)
            return S.SEC_E_OK
        return S.SEC_E_OK if handle in self._deleted else S.SEC_E_INVALID_HANDLE

    def query_sizes(self, handle: Handle) -> tuple[S, SecPkgContextSizes | None]:
        """SECPKG_ATTR_SIZES. cbMaxSignature is 0 when integrity was not negotiated ("If the
        cbMaxSignature member is zero, the security package does not support signing")."""
        ctx = self.context(handle)
        if ctx is None:
            return S.SEC_E_INVALID_HANDLE, None
        signature = SIGNATURE_SIZE if ctx.integrity else 0
        return S.SEC_E_OK, SecPkgContextSizes(NTLM_MAX_TOKEN, signature, 0, signature)

    def _open(
        self, handle: Handle, desc: SecBufferDesc | None, allowed: Callable[[Context], bool]
    ) -> S | _Call:
        """The checks every message function makes first, in this order: the handle, what
        the context negotiated, then the descriptor."""
        ctx = self.context(handle)
        if ctx is None:
            return S.SEC_E_INVALID_HANDLE
        if not allowed(ctx):
            return S.SEC_E_QOP_NOT_SUPPORTED
        status, buffers, token, data = _checked(desc)
        if status:
            return status
        return _Call(ctx.established.session, buffers, token, data)

    @staticmethod
    def _signature_call(call: _Call) -> bool:
        """MakeSignature/VerifySignature need a TOKEN of at least 16 bytes and a message."""
        return (
            call.token is not None
            and call.token.cb_buffer >= SIGNATURE_SIZE
            and len(call.buffers) >= 2
        )

    @staticmethod
    def _writable(token: SecBuffer) -> bool:
        """A TOKEN marked read-only cannot receive the signature ("The package can read this
        buffer, but cannot modify it", SecBuffer), so it is not a valid TOKEN for output."""
        return not token.flags & _EITHER_READONLY and token.data is not None

    def make_signature(self, handle: Handle, qop: int, desc: SecBufferDesc | None, seqno: int) -> S:
        """MakeSignature. fQOP is ignored (the seed: "The quality of service parameter is
        ignored"); SEC_E_QOP_NOT_SUPPORTED when "the quality of protection negotiated between
        the client and server did not include integrity checking"; SEC_E_INVALID_TOKEN when
        "pMessage did not contain a valid SECBUFFER_TOKEN buffer or contained too few buffers",
        which covers a TOKEN shorter than cbMaxSignature."""
        call = self._open(handle, desc, lambda ctx: ctx.integrity)
        if not isinstance(call, _Call):
            return call
        token = call.token
        if not self._signature_call(call) or token is None or not self._writable(token):
            return S.SEC_E_INVALID_TOKEN
        message = _joined([b for b in call.buffers if _is_signed(b)])
        _write_token(token, call.session.sign(message, seqno))
        return S.SEC_E_OK

    def verify_signature(
        self, handle: Handle, desc: SecBufferDesc | None, seqno: int
    ) -> tuple[S, None]:
        """VerifySignature: SEC_E_MESSAGE_ALTERED for a bad signature, SEC_E_OUT_OF_SEQUENCE
        for a good one with the wrong sequence number, SEC_E_INVALID_TOKEN for a missing or
        short TOKEN. A failure leaves the context's state unchanged. pfQOP is left untouched
        (None): NTLM has no QOP to report, and "Some security packages ignore this
        parameter" (VerifySignature)."""
        call = self._open(handle, desc, lambda ctx: ctx.integrity)
        if not isinstance(call, _Call):
            return call, None
        if not self._signature_call(call) or call.token is None:
            return S.SEC_E_INVALID_TOKEN, None
        message = _joined([b for b in call.buffers if _is_signed(b)])
        signature = _bytes(call.token)[:SIGNATURE_SIZE]
        return call.session.verify(message, signature, seqno), None

    def encrypt_message(
        self, handle: Handle, qop: int, desc: SecBufferDesc | None, seqno: int
    ) -> S:
        """EncryptMessage (General): needs negotiated confidentiality unless fQOP is
        SECQOP_WRAP_NO_ENCRYPT ("produce a header or trailer but do not encrypt the message");
        SEC_E_INVALID_TOKEN when "no SECBUFFER_DATA type buffer was found" or no TOKEN;
        SEC_E_BUFFER_TOO_SMALL ("The output buffer is too small") for a short TOKEN."""
        wrap_only = qop == SECQOP_WRAP_NO_ENCRYPT
        call = self._open(
            handle, desc, lambda ctx: ctx.integrity if wrap_only else ctx.confidentiality
        )
        if not isinstance(call, _Call):
            return call
        if qop not in (0, SECQOP_WRAP_NO_ENCRYPT):
            return S.SEC_E_QOP_NOT_SUPPORTED
        if call.token is None or not call.data or not self._writable(call.token):
            return S.SEC_E_INVALID_TOKEN
        if call.token.cb_buffer < SIGNATURE_SIZE:
            return S.SEC_E_BUFFER_TOO_SMALL
        signed = _joined([b for b in call.data if _is_signed(b)])
        if wrap_only:
            _write_token(call.token, call.session.sign(signed, seqno))
            return S.SEC_E_OK
        targets = [b for b in call.data if _is_encrypted(b)]
        sealed, signature = call.session.seal([_bytes(b) for b in targets], signed, seqno)
        for buf, out in zip(targets, sealed, strict=True):
            if buf.data is not None:  # a NULL pvBuffer with cbBuffer 0 holds nothing
                buf.data[: len(out)] = out
        _write_token(call.token, signature)
        return S.SEC_E_OK

    def decrypt_message(
        self, handle: Handle, desc: SecBufferDesc | None, seqno: int
    ) -> tuple[S, int]:
        """DecryptMessage (General): decrypts in place and checks the signature; on failure
        the DATA buffers keep their ciphertext, so no unauthenticated plaintext is released.
        pfQOP "receives package-specific flags that indicate the quality of protection": 0,
        as the message was encrypted (SECQOP_WRAP_NO_ENCRYPT is not carried on the wire)."""
        call = self._open(handle, desc, lambda ctx: ctx.confidentiality)
        if not isinstance(call, _Call):
            return call, 0
        token, data = call.token, call.data
        if token is None or not data or token.cb_buffer < SIGNATURE_SIZE:
            return S.SEC_E_INVALID_TOKEN, 0
        signature = _bytes(token)[:SIGNATURE_SIZE]
        if len(data) == 1 and not data[0].buffer_type & SECBUFFER_ATTRMASK:  # the usual case
            only = data[0]
            status, plain = call.session.unseal([_bytes(only)], signature, app_seqno=seqno)
            if status == S.SEC_E_OK and only.data is not None:
                only.data[: len(plain[0])] = plain[0]
            return status, 0
        parts, signed, encrypted = [], [], []
        for buf in data:
            parts.append(_bytes(buf))
            signed.append(_is_signed(buf))
            encrypted.append(_is_encrypted(buf))
        status, plain = call.session.unseal(parts, signature, signed, encrypted, seqno)
        if status == S.SEC_E_OK:
            for buf, out, changed in zip(data, plain, encrypted, strict=True):
                if changed and buf.data is not None:
                    buf.data[: len(out)] = out
        return status, 0
