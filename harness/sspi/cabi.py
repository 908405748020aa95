"""The exact C layout of SSPI structures, for adapters that call an SSPI library via ctypes.

``unsigned long`` is 32-bit on Windows (LLP64) and 64-bit on LP64 Unix, so the width of the
ULONG fields is a parameter: an SSPI library built for Unix may use either, and the adapter
that loads it must say which.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from harness.sspi.buffers import SecBufferDesc


@dataclass(frozen=True)
class CLayout:
    """ctypes classes for one ULONG width."""

    SecHandle: type[ctypes.Structure]
    SecBuffer: type[ctypes.Structure]
    SecBufferDesc: type[ctypes.Structure]
    SecPkgContext_Sizes: type[ctypes.Structure]


def c_layout(ulong: Any = ctypes.c_uint32) -> CLayout:
    """Build the structures of sspi.h with ``ulong`` as ``unsigned long``."""

    class CSecHandle(ctypes.Structure):
        _fields_ = [("dwLower", ctypes.c_size_t), ("dwUpper", ctypes.c_size_t)]

    class CSecBuffer(ctypes.Structure):
        _fields_ = [("cbBuffer", ulong), ("BufferType", ulong), ("pvBuffer", ctypes.c_void_p)]

    class CSecBufferDesc(ctypes.Structure):
        _fields_ = [
            ("ulVersion", ulong),
            ("cBuffers", ulong),
            ("pBuffers", ctypes.POINTER(CSecBuffer)),
        ]

    class CSecPkgContextSizes(ctypes.Structure):
        _fields_ = [
            ("cbMaxToken", ulong),
            ("cbMaxSignature", ulong),
            ("cbBlockSize", ulong),
            ("cbSecurityTrailer", ulong),
        ]

    return CLayout(CSecHandle, CSecBuffer, CSecBufferDesc, CSecPkgContextSizes)


class CDescriptor:
    """A SecBufferDesc marshalled into C memory, kept alive with its buffers.

    ``read_back()`` copies what the callee wrote (and the lengths it set) into the model.
    """

    def __init__(self, desc: SecBufferDesc, layout: CLayout) -> None:
        self.model = desc
        self.layout = layout
        self._storage: list[Any] = []
        count = len(desc.buffers) if desc.buffers is not None else 0
        self.array = (layout.SecBuffer * max(count, 1))()
        for i, buf in enumerate(desc.buffers or []):
            self.array[i].BufferType = buf.buffer_type & 0xFFFFFFFF
            self.array[i].cbBuffer = buf.cb_buffer & 0xFFFFFFFF
            if buf.data is None:
                self.array[i].pvBuffer = None
            else:
                raw = ctypes.create_string_buffer(bytes(buf.data), max(len(buf.data), 1))
                self._storage.append(raw)
                self.array[i].pvBuffer = ctypes.cast(raw, ctypes.c_void_p)
        pointer = (
            ctypes.cast(self.array, ctypes.POINTER(layout.SecBuffer))
            if desc.buffers is not None
            else ctypes.POINTER(layout.SecBuffer)()
        )
        self.desc = layout.SecBufferDesc(desc.version, desc.c_buffers & 0xFFFFFFFF, pointer)

    def read_back(self) -> None:
        """Copy buffer contents, lengths and types the callee set back into the model."""
        for i, buf in enumerate(self.model.buffers or []):
            entry = self.array[i]
            buf.buffer_type = entry.BufferType
            if entry.pvBuffer is None:
                buf.data = None
                continue
            length = min(entry.cbBuffer, len(buf.data) if buf.data is not None else 0)
            buf.data = bytearray(ctypes.string_at(entry.pvBuffer, length))
            buf.declared_length = None if entry.cbBuffer == length else entry.cbBuffer
