"""Mutants that break the process itself (a native crash, a hang): only isolation in a worker
subprocess survives them, so they declare ``isolate = True``."""

from __future__ import annotations

import ctypes
import time

from harness.adapters.base import CallResult, Handle
from harness.adapters.reference import ReferenceAdapter
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import BufferType


class SegfaultsOnShortToken(ReferenceAdapter):
    """Bug: writes the signature through a pointer it never checked, so a TOKEN smaller than
    cbMaxSignature makes the process die with SIGSEGV (as a C SSP that trusts cbBuffer).

    Breaks MakeSignature: "SEC_E_INVALID_TOKEN: pMessage did not contain a valid
    SECBUFFER_TOKEN buffer or contained too few buffers" (a status, not a crash)."""

    name = "mutant-segfault-short-token"
    isolate = True

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        token = message.first(BufferType.TOKEN) if message and message.buffers else None
        if token is not None and token.cb_buffer < 16:
            ctypes.memset(0, 0, 16)  # write through NULL: the process dies here
        return super().make_signature(handle, qop, message, seqno)


class HangsOnEmptyMessage(ReferenceAdapter):
    """Bug: loops forever waiting for data when the message is empty.

    Breaks MS-NLMP §3.4.4: a zero-length message is signed like any other ("the SeqNum
    parameter MUST start at 0 and is incremented by one for each message sent")."""

    name = "mutant-hang-empty-message"
    isolate = True

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        data = message.of_kind(BufferType.DATA) if message else []
        if data and not any(d.data for d in data):
            while True:
                time.sleep(0.05)
        return super().make_signature(handle, qop, message, seqno)
