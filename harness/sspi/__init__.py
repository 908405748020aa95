"""The SSPI model: constants, status codes and buffer descriptors as sspi.h defines them."""

from __future__ import annotations

from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_ATTRMASK,
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECBUFFER_VERSION,
    SECQOP_WRAP_NO_ENCRYPT,
    BufferType,
    SecStatus,
)
from harness.sspi.sizes import SecPkgContextSizes

__all__ = [
    "SECBUFFER_ATTRMASK",
    "SECBUFFER_READONLY",
    "SECBUFFER_READONLY_WITH_CHECKSUM",
    "SECBUFFER_VERSION",
    "SECQOP_WRAP_NO_ENCRYPT",
    "BufferType",
    "SecBuffer",
    "SecBufferDesc",
    "SecPkgContextSizes",
    "SecStatus",
]
