"""Cryptographic primitives of [MS-NLMP] §6 (Appendix A) on top of `cryptography`.

RC4 and single DES live in cryptography's "decrepit" module: NTLM needs them anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
import zlib

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC_MD5(K, M) of §6 (RFC 2104)."""
    return hmac.new(key, data, hashlib.md5).digest()


def crc32(data: bytes) -> bytes:
    """CRC32(M) of §6, as the 4 little-endian bytes placed in the signature."""
    return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little")


def _expand_des_key(key7: bytes) -> bytes:
    """Spread a 56-bit key over 8 bytes, 7 key bits per byte (parity bits left clear)."""
    bits = int.from_bytes(key7, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def des(key7: bytes, block: bytes) -> bytes:
    """DES(K, D) of §6: encrypt 8 bytes with a 7-byte key in ECB mode."""
    key = _expand_des_key(key7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Three equal keys make 3DES-EDE exactly single DES.
        encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def desl(key16: bytes, block: bytes) -> bytes:
    """DESL(K, D) of §6: three DES encryptions of D under the 16-byte K split 7/7/2+Z(5)."""
    return des(key16[0:7], block) + des(key16[7:14], block) + des(key16[14:16] + b"\x00" * 5, block)


def rc4k(key: bytes, data: bytes) -> bytes:
    """RC4K(K, D) of §6: RC4 with a fresh key schedule."""
    return Cipher(ARC4(key), mode=None).encryptor().update(data)


def xor_bytes(left: bytes, right: bytes) -> bytes:
    """Byte-wise XOR of two equal-length strings, fast for large messages."""
    n = len(left)
    return (int.from_bytes(left, "little") ^ int.from_bytes(right, "little")).to_bytes(n, "little")


class RC4Stream:
    """An RC4 handle (RC4Init / RC4 of §6) whose position can be saved and restored.

    SSPI callers expect a failed VerifySignature or DecryptMessage to leave the context as it
    was, so the package takes keystream tentatively and rewinds on failure: the keystream is
    generated ahead into a buffer, and a position into it is the saved state.
    """

    _CHUNK = 4096

    def __init__(self, key: bytes) -> None:
        self._cipher = Cipher(ARC4(key), mode=None).encryptor()
        self._buffer = b""
        self._base = 0  # absolute keystream offset of _buffer[0]
        self._position = 0  # absolute offset of the next keystream byte
        self._floor = 0  # earliest offset a caller may still rewind to

    def keystream(self, count: int) -> bytes:
        """The next ``count`` bytes of keystream, consumed."""
        end = self._position + count
        if end > self._base + len(self._buffer):
            if self._floor > self._base:
                self._buffer = self._buffer[self._floor - self._base :]
                self._base = self._floor
            missing = end - self._base - len(self._buffer)
            self._buffer += self._cipher.update(b"\x00" * max(missing, self._CHUNK))
        start = self._position - self._base
        self._position = end
        return self._buffer[start : start + count]

    def apply(self, data: bytes) -> bytes:
        """RC4(Handle, D): encrypt or decrypt ``data`` with the next keystream bytes."""
        return xor_bytes(bytes(data), self.keystream(len(data))) if data else b""

    def mark(self) -> int:
        """The current position; keystream before it may be forgotten."""
        self._floor = self._position
        return self._position

    def rewind(self, mark: int) -> None:
        """Go back to a position returned by the latest ``mark``."""
        self._position = mark
