"""Descriptor helpers for adapters whose implementation takes and returns byte strings.

pyspnego, impacket and scapy (and python-gssapi) sign and encrypt bytes the caller builds and
return the signature instead of writing it into a buffer. These adapters therefore cut the
descriptor into byte strings themselves and refuse, with CannotExpress (an UNSUPPORTED case),
what such an API cannot be given: the messages name the implementation, so that the reason
says whose API lacks what.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.adapters.base import CannotExpress
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    BufferType,
)

SIGNATURE_SIZE = 16  # NTLMSSP_MESSAGE_SIGNATURE
READONLY_ATTRIBUTES = SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM


def buffers_of(desc: SecBufferDesc | None) -> list[SecBuffer] | None:
    """The buffers ``cBuffers`` names; None for a NULL descriptor or pBuffers."""
    if desc is None or desc.buffers is None:
        return None
    return desc.buffers[: desc.c_buffers]


def data_of(buffers: Iterable[SecBuffer]) -> list[SecBuffer]:
    """The DATA buffers, in array order (the order an SSP signs them in)."""
    return [b for b in buffers if b.kind == BufferType.DATA]


def token_of(buffers: Iterable[SecBuffer]) -> SecBuffer | None:
    """The first TOKEN buffer, where the signature goes."""
    return next((b for b in buffers if b.kind == BufferType.TOKEN), None)


def as_bytes(buf: SecBuffer) -> bytes:
    """What the buffer holds up to its cbBuffer (b"" for a NULL pvBuffer)."""
    return bytes(buf.data[: buf.cb_buffer]) if buf.data is not None else b""


def joined(buffers: Iterable[SecBuffer]) -> bytes:
    """The buffers' bytes concatenated: the one message a byte-string API signs."""
    return b"".join(as_bytes(b) for b in buffers)


def signed(buf: SecBuffer) -> bool:
    """Whether a DATA buffer is covered by the signature: without READONLY, or with
    READONLY_WITH_CHECKSUM."""
    return not buf.readonly or buf.readonly_with_checksum


def encrypted(buf: SecBuffer) -> bool:
    """Whether a DATA buffer is encrypted: it has neither read-only attribute."""
    return not buf.flags & READONLY_ATTRIBUTES


def refuse_attributes(buffers: Iterable[SecBuffer], why: str, *, mask: int) -> None:
    """CannotExpress when a DATA buffer has an attribute in ``mask``: a call that takes one
    byte string (``why`` says which) has nowhere to pass it."""
    if any(b.kind == BufferType.DATA and b.flags & mask for b in buffers):
        raise CannotExpress(
            f"{why}; READONLY / READONLY_WITH_CHECKSUM attributes cannot be expressed"
        )


def output_token(desc: SecBufferDesc | None, returns: str) -> tuple[list[SecBuffer], SecBuffer]:
    """The buffers, and the TOKEN buffer that will receive the signature. The implementation
    returns the signature rather than writing it anywhere (``returns`` says what it returns),
    so a missing or short TOKEN has no counterpart: raised as CannotExpress before the
    implementation is called, not answered by the adapter."""
    buffers = buffers_of(desc) or []
    token = token_of(buffers)
    if token is None or token.cb_buffer < SIGNATURE_SIZE:
        raise CannotExpress(
            f"no TOKEN buffer of {SIGNATURE_SIZE} bytes to receive the signature ({returns})"
        )
    return buffers, token


def input_token(desc: SecBufferDesc | None, name: str) -> tuple[list[SecBuffer], SecBuffer]:
    """The buffers, and the TOKEN buffer holding the signature to check, passed to the
    implementation ``name`` whatever its length; without one there is nothing to pass
    (CannotExpress)."""
    buffers = buffers_of(desc) or []
    token = token_of(buffers)
    if token is None:
        raise CannotExpress(f"no TOKEN buffer holding a signature to pass to {name}")
    return buffers, token


def write_signature(token: SecBuffer, signature: bytes) -> None:
    """Put a returned signature into the TOKEN as an SSP does: cbBuffer becomes its size."""
    assert token.data is not None
    token.data[:SIGNATURE_SIZE] = signature
    del token.data[SIGNATURE_SIZE:]
    token.declared_length = None
