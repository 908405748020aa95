"""Constants from sspi.h / winerror.h: buffer types, buffer attribute flags, status codes.

Values are those of the Windows SDK headers (sspi.h for SECBUFFER_*, winerror.h for SEC_E_*),
as listed on the SecBuffer and MakeSignature reference pages.
"""

from __future__ import annotations

import enum

SECBUFFER_VERSION = 0
SECBUFFER_READONLY = 0x80000000
SECBUFFER_READONLY_WITH_CHECKSUM = 0x10000000
SECBUFFER_ATTRMASK = 0xF0000000
SECQOP_WRAP_NO_ENCRYPT = 0x80000001
SECPKG_ATTR_SIZES = 0


class BufferType(enum.IntEnum):
    """SecBuffer.BufferType without the attribute bits (SecBuffer reference page)."""

    EMPTY = 0
    DATA = 1
    TOKEN = 2
    PKG_PARAMS = 3
    MISSING = 4
    EXTRA = 5
    STREAM_TRAILER = 6
    STREAM_HEADER = 7
    NEGOTIATION_INFO = 8
    PADDING = 9
    STREAM = 10


class SecStatus(enum.IntEnum):
    """SECURITY_STATUS values (winerror.h); names are the SDK's, so reports read like C code."""

    SEC_E_OK = 0x00000000
    SEC_I_CONTINUE_NEEDED = 0x00090312
    SEC_I_COMPLETE_NEEDED = 0x00090313
    SEC_I_RENEGOTIATE = 0x00090321
    SEC_E_INSUFFICIENT_MEMORY = 0x80090300
    SEC_E_INVALID_HANDLE = 0x80090301
    SEC_E_UNSUPPORTED_FUNCTION = 0x80090302
    SEC_E_TARGET_UNKNOWN = 0x80090303
    SEC_E_INTERNAL_ERROR = 0x80090304
    SEC_E_SECPKG_NOT_FOUND = 0x80090305
    SEC_E_NOT_OWNER = 0x80090306
    SEC_E_CANNOT_INSTALL = 0x80090307
    SEC_E_INVALID_TOKEN = 0x80090308
    SEC_E_CANNOT_PACK = 0x80090309
    SEC_E_QOP_NOT_SUPPORTED = 0x8009030A
    SEC_E_NO_IMPERSONATION = 0x8009030B
    SEC_E_LOGON_DENIED = 0x8009030C
    SEC_E_UNKNOWN_CREDENTIALS = 0x8009030D
    SEC_E_NO_CREDENTIALS = 0x8009030E
    SEC_E_MESSAGE_ALTERED = 0x8009030F
    SEC_E_OUT_OF_SEQUENCE = 0x80090310
    SEC_E_NO_AUTHENTICATING_AUTHORITY = 0x80090311
    SEC_E_CONTEXT_EXPIRED = 0x80090317
    SEC_E_INCOMPLETE_MESSAGE = 0x80090318
    SEC_E_BUFFER_TOO_SMALL = 0x80090321
    SEC_E_WRONG_PRINCIPAL = 0x80090322
    SEC_E_CRYPTO_SYSTEM_INVALID = 0x80090337
    SEC_E_INVALID_PARAMETER = 0x8009035D

    @classmethod
    def parse(cls, value: int | str) -> SecStatus | int:
        """A status from a name (``"SEC_E_OK"``) or a number; unknown numbers stay ints."""
        if isinstance(value, str):
            return cls[value]
        try:
            return cls(value)
        except ValueError:
            return value


def status_name(value: int) -> str:
    """Symbolic name of a status (also when given as a signed 32-bit LONG), or its hex value."""
    name = _STATUS_NAMES.get(value & 0xFFFFFFFF)
    return name if name is not None else f"0x{value & 0xFFFFFFFF:08X}"


# A plain dict: an enum lookup per status costs a microsecond, and runs name thousands.
_STATUS_NAMES: dict[int, str] = {int(status): status.name for status in SecStatus}
