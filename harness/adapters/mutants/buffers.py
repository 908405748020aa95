"""Mutants that misread the descriptor: which DATA buffers are covered and in which order,
where in the TOKEN the signature goes, and how much of the TOKEN is compared."""

from __future__ import annotations

from collections.abc import Callable

from harness.adapters.base import CallResult, Handle
from harness.adapters.mutants._base import (
    MutantAdapter,
    MutantPackage,
    Pairs,
    ViewMutant,
    data_buffers,
    settle,
    shadow,
)
from harness.ntlm.package import _Call
from harness.ntlm.session import SIGNATURE_SIZE, SessionSecurity
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import BufferType, SecStatus


class SignsReverseOrder(ViewMutant):
    """Bug: walks the DATA buffers from the last to the first (a list built by prepending),
    in every message function, so a multi-buffer message is checksummed and encrypted in the
    wrong order. Its own peer agrees with it; the reference does not.

    Breaks MS-NLMP §3.4.6 GSS_WrapEx: the input buffers are processed in order, as one
    message ("This call is identical to GSS_Wrap, except that it supports multiple input
    buffers")."""

    name = "mutant-signs-reverse-order"
    misread = frozenset({"sign", "verify", "seal", "unseal"})

    def view(self, message: SecBufferDesc | None) -> tuple[SecBufferDesc | None, Pairs]:
        return shadow(message, reorder=lambda data: data[::-1])


class SignsFirstDataOnly(ViewMutant):
    """Bug: MakeSignature and VerifySignature checksum only the first DATA buffer (the
    single-buffer code path of GSS_GetMIC reused for SSPI); later DATA buffers are not
    protected at all.

    Breaks MakeSignature: "The SecBufferDesc structure also references a SecBuffer structure
    of type SECBUFFER_TOKEN that receives the signature" over the message in pMessage, and
    MS-NLMP §3.4.6 GSS_WrapEx (multiple input buffers form one message)."""

    name = "mutant-signs-first-data-only"
    misread = frozenset({"sign", "verify"})

    def view(self, message: SecBufferDesc | None) -> tuple[SecBufferDesc | None, Pairs]:
        later = {id(b) for b in data_buffers(message)[1:]}
        return shadow(message, lambda b: BufferType.EMPTY if id(b) in later else b.buffer_type)


Operation = Callable[[SecBufferDesc | None], CallResult]


def _token_pair(pairs: Pairs) -> tuple[SecBuffer, SecBuffer] | None:
    return next(((o, v) for o, v in pairs if o.kind == BufferType.TOKEN), None)


class SignatureAtTokenEnd(MutantAdapter):
    """Bug: right-aligns the 16-byte signature in a TOKEN larger than cbMaxSignature (writes
    it at ``pvBuffer + cbBuffer - 16``) and leaves cbBuffer as it was; VerifySignature and
    DecryptMessage read it from the end as well, so only its own peer understands it.

    Breaks MS-NLMP §2.2.2.9: the NTLMSSP_MESSAGE_SIGNATURE is the 16 bytes the TOKEN carries
    (MakeSignature: the TOKEN buffer "receives the signature"), i.e. at its start with
    cbBuffer set to the signature's size, as the reference and Windows do."""

    name = "mutant-signature-at-token-end"

    def _produce(self, message: SecBufferDesc | None, call: Operation) -> CallResult:
        view, pairs = shadow(message)
        found = _token_pair(pairs)
        if found is None or found[0].data is None or found[0].cb_buffer <= SIGNATURE_SIZE:
            result = call(view)
            settle(pairs)
            return result
        original, scratch = found
        scratch.data = bytearray(original.cb_buffer)
        result = call(view)
        if result.status == SecStatus.SEC_E_OK and scratch.data is not None:
            end = original.cb_buffer
            assert original.data is not None
            original.data[end - SIGNATURE_SIZE : end] = scratch.data[:SIGNATURE_SIZE]
        return result

    def _consume(self, message: SecBufferDesc | None) -> SecBufferDesc | None:
        view, pairs = shadow(message)
        found = _token_pair(pairs)
        if found is not None and found[0].data is not None:
            original, scratch = found
            data = bytes(found[0].data)
            end = min(original.cb_buffer, len(data))
            if end > SIGNATURE_SIZE:
                scratch.data = bytearray(data[end - SIGNATURE_SIZE : end])
                scratch.declared_length = None
        return view

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        base = MutantAdapter.make_signature
        return self._produce(message, lambda view: base(self, handle, qop, view, seqno))

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return super().verify_signature(handle, self._consume(message), seqno)

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        base = MutantAdapter.encrypt_message
        return self._produce(message, lambda view: base(self, handle, qop, view, seqno))

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return super().decrypt_message(handle, self._consume(message), seqno)


class _PrefixCompareSession(SessionSecurity):
    """Compares as many signature bytes as the caller supplied (memcmp over cbBuffer)."""

    def _compare(self, expected: bytes, received: bytes) -> SecStatus:
        if 0 < len(received) < SIGNATURE_SIZE:
            return super()._compare(expected, received + expected[len(received) :])
        return super()._compare(expected, received)


class _AnyTokenLengthPackage(MutantPackage):
    """VerifySignature takes a TOKEN of any non-zero length."""

    _verifying = False

    def verify_signature(
        self, handle: tuple[int, int], desc: SecBufferDesc | None, seqno: int
    ) -> tuple[SecStatus, None]:
        self._verifying = True
        try:
            return super().verify_signature(handle, desc, seqno)
        finally:
            self._verifying = False

    def _signature_call(self, call: _Call) -> bool:  # type: ignore[override]
        if self._verifying:
            return call.token is not None and call.token.cb_buffer > 0 and len(call.buffers) >= 2
        return super()._signature_call(call)


class AcceptsTruncatedSignature(MutantAdapter):
    """Bug: VerifySignature compares the received signature over the TOKEN's cbBuffer bytes
    (``memcmp(expected, token, cbBuffer)``) instead of requiring all 16, so a truncated
    signature whose prefix matches is accepted.

    Breaks VerifySignature: "SEC_E_INVALID_TOKEN: pMessage did not contain a valid
    SECBUFFER_TOKEN buffer, or contained too few buffers" (a signature is 16 bytes, MS-NLMP
    §2.2.2.9)."""

    name = "mutant-accepts-truncated-signature"
    package_class = _AnyTokenLengthPackage
    session_class = _PrefixCompareSession
