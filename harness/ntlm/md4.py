"""MD4 (RFC 1320), needed by NTOWFv1 and absent from OpenSSL 3's default provider."""

from __future__ import annotations

import struct

_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    x &= _MASK
    return ((x << n) | (x >> (32 - n))) & _MASK


def md4(message: bytes) -> bytes:
    """The 16-byte MD4 digest of ``message`` (RFC 1320 §3)."""
    length_bits = (len(message) * 8) & 0xFFFFFFFFFFFFFFFF
    padded = message + b"\x80" + b"\x00" * ((55 - len(message)) % 64)
    padded += struct.pack("<Q", length_bits)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for offset in range(0, len(padded), 64):
        x = struct.unpack("<16I", padded[offset : offset + 64])
        aa, bb, cc, dd = a, b, c, d
        # Round 1: F(X,Y,Z) = XY v not(X) Z
        for k in (0, 4, 8, 12):
            a = _rotl(a + ((b & c) | (~b & d)) + x[k], 3)
            d = _rotl(d + ((a & b) | (~a & c)) + x[k + 1], 7)
            c = _rotl(c + ((d & a) | (~d & b)) + x[k + 2], 11)
            b = _rotl(b + ((c & d) | (~c & a)) + x[k + 3], 19)
        # Round 2: G(X,Y,Z) = XY v XZ v YZ, constant 0x5A827999
        for k in (0, 1, 2, 3):
            a = _rotl(a + ((b & c) | (b & d) | (c & d)) + x[k] + 0x5A827999, 3)
            d = _rotl(d + ((a & b) | (a & c) | (b & c)) + x[k + 4] + 0x5A827999, 5)
            c = _rotl(c + ((d & a) | (d & b) | (a & b)) + x[k + 8] + 0x5A827999, 9)
            b = _rotl(b + ((c & d) | (c & a) | (d & a)) + x[k + 12] + 0x5A827999, 13)
        # Round 3: H(X,Y,Z) = X xor Y xor Z, constant 0x6ED9EBA1
        for k in (0, 2, 1, 3):
            a = _rotl(a + (b ^ c ^ d) + x[k] + 0x6ED9EBA1, 3)
            d = _rotl(d + (a ^ b ^ c) + x[k + 8] + 0x6ED9EBA1, 9)
            c = _rotl(c + (d ^ a ^ b) + x[k + 4] + 0x6ED9EBA1, 11)
            b = _rotl(b + (c ^ d ^ a) + x[k + 12] + 0x6ED9EBA1, 15)
        a, b, c, d = (a + aa) & _MASK, (b + bb) & _MASK, (c + cc) & _MASK, (d + dd) & _MASK
    return struct.pack("<4I", a, b, c, d)
