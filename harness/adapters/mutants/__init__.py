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
