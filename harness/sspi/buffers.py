"""SecBuffer and SecBufferDesc as a Python model.

The model can express everything a C caller can put in a descriptor (a NULL ``pvBuffer``, a
``cbBuffer`` that lies about the length, a wrong ``ulVersion``, a ``cBuffers`` that does not
match the array) so that malformed descriptors are data, not special code paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.sspi.constants import (
    SECBUFFER_ATTRMASK,
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECBUFFER_VERSION,
    BufferType,
)


@dataclass
class SecBuffer:
    """One SecBuffer: ``BufferType`` keeps the attribute bits, exactly as in C."""

    buffer_type: int
    data: bytearray | None
    declared_length: int | None = None

    @classmethod
    def of(cls, kind: BufferType, data: bytes | int, flags: int = 0) -> SecBuffer:
        """A buffer holding ``data``, or ``data`` zero bytes when given an int."""
        payload = bytearray(data) if isinstance(data, int) else bytearray(data)
        return cls(int(kind) | flags, payload)

    @property
    def kind(self) -> int:
        """The type without SECBUFFER_ATTRMASK bits."""
        return self.buffer_type & ~SECBUFFER_ATTRMASK & 0xFFFFFFFF

    @property
    def flags(self) -> int:
        return self.buffer_type & SECBUFFER_ATTRMASK

    @property
    def readonly(self) -> bool:
        return bool(self.buffer_type & SECBUFFER_READONLY)

    @property
    def readonly_with_checksum(self) -> bool:
        return bool(self.buffer_type & SECBUFFER_READONLY_WITH_CHECKSUM)

    @property
    def cb_buffer(self) -> int:
        """What ``cbBuffer`` says, which may differ from the real length of ``data``."""
        if self.declared_length is not None:
            return self.declared_length
        return 0 if self.data is None else len(self.data)

    def copy(self) -> SecBuffer:
        return SecBuffer(
            self.buffer_type,
            None if self.data is None else bytearray(self.data),
            self.declared_length,
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": self.buffer_type,
            "data": None if self.data is None else self.data.hex(),
        }
        if self.declared_length is not None:
            out["cbBuffer"] = self.declared_length
        return out


@dataclass
class SecBufferDesc:
    """A SecBufferDesc; ``buffers`` None is a NULL ``pBuffers``."""

    buffers: list[SecBuffer] | None = field(default_factory=list)
    version: int = SECBUFFER_VERSION
    declared_count: int | None = None

    @property
    def c_buffers(self) -> int:
        if self.declared_count is not None:
            return self.declared_count
        return 0 if self.buffers is None else len(self.buffers)

    def of_kind(self, kind: BufferType) -> list[SecBuffer]:
        return [b for b in self.buffers or [] if b.kind == kind]

    def first(self, kind: BufferType) -> SecBuffer | None:
        found = self.of_kind(kind)
        return found[0] if found else None

    def copy(self) -> SecBufferDesc:
        buffers = None if self.buffers is None else [b.copy() for b in self.buffers]
        return SecBufferDesc(buffers, self.version, self.declared_count)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "ulVersion": self.version,
            "pBuffers": None if self.buffers is None else [b.to_json() for b in self.buffers],
        }
        if self.declared_count is not None:
            out["cBuffers"] = self.declared_count
        return out
