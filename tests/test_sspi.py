"""The SSPI model: C layout (harness.sspi.cabi), SecBuffer properties and status names."""

from __future__ import annotations

import ctypes

import pytest

from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.cabi import CDescriptor, c_layout
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    BufferType,
    SecStatus,
    status_name,
)

POINTER = ctypes.sizeof(ctypes.c_void_p)
needs_64_bit = pytest.mark.skipif(POINTER != 8, reason="layout sizes below are for 64-bit")


@needs_64_bit
def test_layout_with_32_bit_ulong() -> None:
    # sspi.h on Windows x64 (LLP64): SecBuffer {ULONG cbBuffer; ULONG BufferType; void*}.
    layout = c_layout(ctypes.c_uint32)
    assert ctypes.sizeof(layout.SecBuffer) == 16
    assert layout.SecBuffer.pvBuffer.offset == 8
    assert ctypes.sizeof(layout.SecBufferDesc) == 16
    assert layout.SecBufferDesc.pBuffers.offset == 8
    assert ctypes.sizeof(layout.SecHandle) == 16
    assert ctypes.sizeof(layout.SecPkgContext_Sizes) == 16


@needs_64_bit
def test_layout_with_64_bit_ulong() -> None:
    # LP64 Unix: unsigned long is 8 bytes.
    layout = c_layout(ctypes.c_uint64)
    assert ctypes.sizeof(layout.SecBuffer) == 24
    assert layout.SecBuffer.BufferType.offset == 8
    assert layout.SecBuffer.pvBuffer.offset == 16
    assert ctypes.sizeof(layout.SecBufferDesc) == 24
    assert ctypes.sizeof(layout.SecPkgContext_Sizes) == 32


@pytest.mark.parametrize("ulong", [ctypes.c_uint32, ctypes.c_uint64])
def test_cdescriptor_marshals_model(ulong) -> None:
    layout = c_layout(ulong)
    model = SecBufferDesc([
        SecBuffer.of(BufferType.DATA, b"hello", SECBUFFER_READONLY_WITH_CHECKSUM),
        SecBuffer.of(BufferType.TOKEN, 16),
        SecBuffer(BufferType.EMPTY, None),
    ])
    c = CDescriptor(model, layout)
    assert c.desc.ulVersion == 0
    assert c.desc.cBuffers == 3
    entries = [c.desc.pBuffers[i] for i in range(3)]
    assert [e.BufferType for e in entries] == [
        BufferType.DATA | SECBUFFER_READONLY_WITH_CHECKSUM, BufferType.TOKEN, BufferType.EMPTY
    ]
    assert [e.cbBuffer for e in entries] == [5, 16, 0]
    assert ctypes.string_at(entries[0].pvBuffer, 5) == b"hello"
    assert ctypes.string_at(entries[1].pvBuffer, 16) == bytes(16)
    assert entries[2].pvBuffer is None


@pytest.mark.parametrize("ulong", [ctypes.c_uint32, ctypes.c_uint64])
def test_cdescriptor_read_back(ulong) -> None:
    layout = c_layout(ulong)
    model = SecBufferDesc([
        SecBuffer.of(BufferType.DATA, b"plaintext"),
        SecBuffer.of(BufferType.TOKEN, 32),
    ])
    c = CDescriptor(model, layout)
    # What a callee does: rewrite DATA in place, write a 16-byte signature and shrink cbBuffer.
    data, token = c.desc.pBuffers[0], c.desc.pBuffers[1]
    ctypes.memmove(data.pvBuffer, b"CIPHERTXT", 9)
    ctypes.memmove(token.pvBuffer, bytes(range(16)), 16)
    token.cbBuffer = 16
    c.read_back()
    assert bytes(model.buffers[0].data) == b"CIPHERTXT"
    assert bytes(model.buffers[1].data) == bytes(range(16))
    assert model.buffers[1].cb_buffer == 16
    assert model.buffers[1].declared_length is None


def test_cdescriptor_read_back_keeps_a_lying_length() -> None:
    # A callee that claims more than the buffer holds: the model keeps the claim.
    model = SecBufferDesc([SecBuffer.of(BufferType.TOKEN, 4)])
    c = CDescriptor(model, c_layout())
    c.desc.pBuffers[0].cbBuffer = 100
    c.desc.pBuffers[0].BufferType = BufferType.EXTRA
    c.read_back()
    assert model.buffers[0].kind == BufferType.EXTRA
    assert len(model.buffers[0].data) == 4
    assert model.buffers[0].cb_buffer == 100


def test_cdescriptor_null_buffers_and_declared_count() -> None:
    c = CDescriptor(SecBufferDesc(None, version=7), c_layout())
    assert not c.desc.pBuffers  # NULL pBuffers
    assert c.desc.ulVersion == 7 and c.desc.cBuffers == 0
    model = SecBufferDesc([SecBuffer.of(BufferType.DATA, b"a")], declared_count=5)
    assert CDescriptor(model, c_layout()).desc.cBuffers == 5


def test_secbuffer_lying_length_is_marshalled() -> None:
    buf = SecBuffer(BufferType.DATA, bytearray(b"abc"), declared_length=10)
    c = CDescriptor(SecBufferDesc([buf]), c_layout())
    assert c.desc.pBuffers[0].cbBuffer == 10


@pytest.mark.parametrize(
    ("flags", "readonly", "with_checksum"),
    [
        (0, False, False),
        (SECBUFFER_READONLY, True, False),
        (SECBUFFER_READONLY_WITH_CHECKSUM, False, True),
        (SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM, True, True),
    ],
)
def test_secbuffer_flag_properties(flags: int, readonly: bool, with_checksum: bool) -> None:
    # sspi.h: SECBUFFER_READONLY 0x80000000, SECBUFFER_READONLY_WITH_CHECKSUM 0x10000000,
    # SECBUFFER_ATTRMASK 0xF0000000.
    buf = SecBuffer.of(BufferType.TOKEN, b"xy", flags)
    assert buf.buffer_type == BufferType.TOKEN | flags
    assert buf.kind == BufferType.TOKEN
    assert buf.flags == flags
    assert buf.readonly is readonly
    assert buf.readonly_with_checksum is with_checksum


def test_secbuffer_lengths_and_copy() -> None:
    buf = SecBuffer.of(BufferType.DATA, 5)
    assert buf.data == bytearray(5) and buf.cb_buffer == 5
    assert SecBuffer(BufferType.DATA, None).cb_buffer == 0
    clone = buf.copy()
    clone.data[0] = 1
    assert buf.data[0] == 0


def test_secbufferdesc_helpers() -> None:
    desc = SecBufferDesc([
        SecBuffer.of(BufferType.DATA, b"1"),
        SecBuffer.of(BufferType.TOKEN, b"2"),
        SecBuffer.of(BufferType.DATA, b"3", SECBUFFER_READONLY),
    ])
    assert desc.c_buffers == 3
    assert [bytes(b.data) for b in desc.of_kind(BufferType.DATA)] == [b"1", b"3"]
    assert desc.first(BufferType.TOKEN).data == bytearray(b"2")
    assert desc.first(BufferType.PADDING) is None
    assert SecBufferDesc(None).c_buffers == 0


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (0, "SEC_E_OK"),
        (0x8009030F, "SEC_E_MESSAGE_ALTERED"),  # winerror.h
        (0x80090310, "SEC_E_OUT_OF_SEQUENCE"),
        (0x80090308, "SEC_E_INVALID_TOKEN"),
        (0x8009030C, "SEC_E_LOGON_DENIED"),
        (0x00090312, "SEC_I_CONTINUE_NEEDED"),
    ],
)
def test_status_name_known(value: int, name: str) -> None:
    assert status_name(value) == name
    assert SecStatus.parse(name) == value
    assert SecStatus.parse(value) is SecStatus[name]


@pytest.mark.parametrize(("value", "text"), [(0x80091234, "0x80091234"), (1, "0x00000001")])
def test_status_name_unknown(value: int, text: str) -> None:
    assert status_name(value) == text
    assert SecStatus.parse(value) == value and not isinstance(SecStatus.parse(value), SecStatus)


def test_status_name_accepts_signed_security_status() -> None:
    # SECURITY_STATUS is a signed LONG in sspi.h; 0x8009030F read as signed is negative.
    from harness.sspi.constants import status_name

    assert status_name(0x8009030F - 2**32) == "SEC_E_MESSAGE_ALTERED"
