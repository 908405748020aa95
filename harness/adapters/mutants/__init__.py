"""Deliberately broken adapters, derived from the reference, each a realistic bug.

They prove that the harness catches what it claims to catch. The ones here break the process
itself (a native crash, a hang), which only isolation in a worker subprocess survives.
"""

from __future__ import annotations

import ctypes
import time

from harness.adapters.base import CallResult, Handle
from harness.adapters.reference import ReferenceAdapter
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import BufferType, SecStatus


class SegfaultsOnShortToken(ReferenceAdapter):
    """Bug: writes the signature through a pointer it never checked, so a TOKEN smaller than
    cbMaxSignature makes the process die with SIGSEGV (as a C SSP that trusts cbBuffer)."""

    name = "mutant-segfault-short-token"

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        token = message.first(BufferType.TOKEN) if message and message.buffers else None
        if token is not None and token.cb_buffer < 16:
            ctypes.memset(0, 0, 16)  # write through NULL: the process dies here
        return super().make_signature(handle, qop, message, seqno)


class HangsOnEmptyMessage(ReferenceAdapter):
    """Bug: loops forever waiting for data when the message is empty."""

    name = "mutant-hang-empty-message"

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        data = message.of_kind(BufferType.DATA) if message else []
        if data and not any(d.data for d in data):
            while True:
                time.sleep(0.05)
        return super().make_signature(handle, qop, message, seqno)


class AcceptsReplays(ReferenceAdapter):
    """Bug: VerifySignature ignores a wrong sequence number when the checksum is right, so
    a replayed message is accepted (sequence detection never worked)."""

    name = "mutant-accepts-replays"

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result = super().verify_signature(handle, message, seqno)
        if result.status == SecStatus.SEC_E_OUT_OF_SEQUENCE:
            return CallResult(SecStatus.SEC_E_OK, 0)
        return result


class ReleasesPlaintextOnFailure(ReferenceAdapter):
    """Bug: DecryptMessage decrypts in place before checking the signature and does not undo
    it when the check fails, handing unauthenticated plaintext to the caller."""

    name = "mutant-releases-plaintext"

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        before = message.copy() if message else None
        result = super().decrypt_message(handle, message, seqno)
        if result.status != SecStatus.SEC_E_OK and message and before:
            context = self.package.context((handle.lower, handle.upper))
            if context is not None:
                data = [b for b in message.buffers or [] if b.kind == BufferType.DATA]
                for buf in data:
                    if buf.data:
                        # decrypt with a throwaway copy of the keystream position
                        stream = context.established.session.incoming.handle
                        mark = stream.mark()
                        buf.data[:] = stream.apply(bytes(buf.data))
                        stream.rewind(mark)
        return result
